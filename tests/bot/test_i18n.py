"""Translations: complete in German and English, compiled, with the placeholders intact."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).parents[2]
PLACEHOLDER = re.compile(r"\{\w*\}")


def catalog(language: str, kind: str = "po") -> dict[object, object]:
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"klimabot.{kind}"
    with path.open("rb") as file:
        messages = read_po(file) if kind == "po" else read_mo(file)
    return {_hashable(message.id): _hashable(message.string) for message in messages if message.id}


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


@pytest.fixture(scope="module")
def extracted() -> set[object]:
    """The messages the code marks for translation, extracted afresh."""
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found: set[object] = set()
    for package in ("bot", "handlers", "storage"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package, keywords=keywords
        ):
            found.add(message)
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_in_the_code_is_translated(extracted: set[object], language: str) -> None:
    translated = {key for key, value in catalog(language).items() if value}
    assert extracted - translated == set()


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_every_placeholder(language: str) -> None:
    for message_id, string in catalog(language).items():
        ids = message_id if isinstance(message_id, tuple) else (message_id,)
        strings = string if isinstance(string, tuple) else (string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for form in strings:
            assert set(PLACEHOLDER.findall(form)) == expected, (message_id, form)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalog_matches_its_source(language: str) -> None:
    assert catalog(language, "mo") == {
        key: value for key, value in catalog(language).items() if value
    }
