"""German words as search compares them: folded, stemmed, and split for compounds.

People type "Waermepumpe", "Warmepumpe" or "Wärmepumpen" for "Wärmepumpe", and "rad" for a
tip about "Dienstfahrräder". The index and the query both go through :func:`stem` (case
and diacritics folded, then the Snowball German stemmer, which also reads ae/oe/ue as
ä/ö/ü and ß as ss), so all of these meet on one stem. A compound holds its parts inside one
word; :func:`compound_parts` indexes each word's suffixes, so that a word that starts one
of them is found inside a compound.

The full-text index stores what these functions returned when a tip was written, and
removes it again by recomputing it: a change to them needs a migration that rebuilds the
index (``INSERT INTO tips_search(tips_search) VALUES ('delete-all')``, then refill it).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

import snowballstemmer

MAX_SEARCH_WORDS = 8
# A compound part is at least three letters, and so is what comes before it.
MIN_PART = 3
MIN_LEAD = 2
MIN_INNER_STEM = 5
# The endings of German nouns and adjectives that the stemmer takes off.
ENDINGS = ("", "e", "em", "en", "er", "ern", "es", "n", "s")
_WORD = re.compile(r"[^\W_]+")
# Snowball's stemmers keep state while they work: one per thread that stems.
_stemmers = threading.local()


def fold(text: str) -> str:
    """Return text case-folded, without diacritics, with "CO₂" read as "co2"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Return the stem both the index and a query use for one word."""
    stemmer = getattr(_stemmers, "german", None)
    if stemmer is None:
        stemmer = _stemmers.german = snowballstemmer.stemmer("german")
    return str(stemmer.stemWord(fold(word)))


def stems(text: str) -> list[str]:
    """Return the stems of the words of a text, in order."""
    return [stem(word) for word in _WORD.findall(text)]


def index_words(text: str | None) -> str:
    """Return a text as the word index holds it: its stems, separated by spaces."""
    return " ".join(stems(text or ""))


def compound_parts(*texts: str | None) -> str:
    """Return the inner parts of the texts' words: each suffix that may be a compound's part.

    "Druckluftleckagen" gives "uckluftleckagen" … "luftleckagen" … "leckagen" … "gen": a
    query word is found inside the word by them as :func:`inner_forms` says.
    """
    words = {fold(word) for text in texts for word in _WORD.findall(text or "")}
    parts = {word[start:] for word in words for start in range(MIN_LEAD, len(word) - MIN_PART + 1)}
    return " ".join(sorted(parts))


def inner_forms(written: str, stemmed: str) -> tuple[list[str], list[str]]:
    """Return how a query word is found inside a compound: (prefixes, whole parts).

    A part that starts with the stem, so that "Wärmepumpen" finds "Luftwärmepumpe". But a
    stem shorter than five letters says too little inside another word ("Kosten" as
    "kost" would find "Ökostrom"): then a part that starts with the word as typed ("Luft"
    in "Druckluftleckagen"), or that is the stem with an inflection ending and so ends
    the compound ("Pumpen" in "Wärmepumpe", "Räder" in "Lastenrad").
    """
    if len(stemmed) >= MIN_INNER_STEM:
        return [stemmed], []
    return [written], [stemmed + ending for ending in ENDINGS]


def search_words(query: str) -> list[str]:
    """Return the words of a search query (at most eight), without search syntax."""
    words = [word for word in _WORD.findall(query) if len(word) >= 2 or word.isdigit()]
    return words[:MAX_SEARCH_WORDS]


def query_stems(query: str) -> list[str]:
    """Return the stems a search looks for, each once, in the order they were typed."""
    return list(dict.fromkeys(stem(word) for word in search_words(query)))


def query_terms(query: str) -> list[tuple[str, str]]:
    """Return each search word as written (folded) and stemmed, once each."""
    return list(dict.fromkeys((fold(word), stem(word)) for word in search_words(query)))


# The SQL functions the index's triggers call; every connection of the engine has them.
SQL_FUNCTIONS = (
    ("klimabot_index_words", 1, index_words),
    ("klimabot_compound_parts", 2, compound_parts),
)


def add_sql_functions(connection: Any) -> None:
    """Give a DB-API SQLite connection the functions that fill the full-text index."""
    for name, arguments, function in SQL_FUNCTIONS:
        connection.create_function(name, arguments, function, deterministic=True)
