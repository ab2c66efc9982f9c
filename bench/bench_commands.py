"""Benchmark /meetings and /tips in-process (dispatch, query, rendering) on a large database."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import itertools
import json
import math
import os
import platform
import random
import re
import sqlite3
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
from common import code_version
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import DeclarativeBase

from bot.allowance import Allowance
from bot.app import build_dispatcher
from bot.config import Config
from bot.core import ChatId, Platform, Request, Sender, UserId
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from storage.db import MIGRATIONS, open_database, session_factory
from storage.models import (
    Answer,
    Category,
    Identity,
    Meeting,
    Member,
    Partner,
    Rsvp,
    Tip,
    fold_name,
)
from storage.search import compound_parts, fold, inner_forms, stem, stems
from storage.tips import TipPage, search_tips, tips_in_category, top_tips

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
SEED = 20261125
# Bump when the generated data changes, so that cached databases are not reused.
GENERATOR_VERSION = 1
# Meetings are generated relative to the moment of generation; after a month the share of
# upcoming ones has drifted enough to regenerate.
MAX_CACHE_AGE = dt.timedelta(days=30)
CHUNK = 5000
WARMUP = 10
TELEGRAM_IDS = 100_000_000
EXPLAIN_RUNS = 20
MEETINGS_P99 = 2.0  # ms
BLOCK = 20  # runs per turn when /meetings and its baselines take turns


def word_list(words: str) -> tuple[str, ...]:
    """Split a block of words; long vocabularies read better as text than as literals."""
    return tuple(words.split())


# Search words and the share of tips that contain them. No other word of the generated
# texts contains one of their stems, so a search finds exactly these tips.
SEARCH_WORDS = {"Wärmepumpe": 0.01, "Photovoltaik": 0.04, "Kosten": 0.50, "Einsparung": 0.95}
ABSENT_WORD = "Kernfusion"
RARE_SHARE = 0.05
# Share of the tips with a search word that carry it in the title instead of the text.
IN_TITLE = 0.3

FILLER = word_list(
    """
und und und der der die die die das das mit mit für für im in in auf wir wir haben
unsere unser ein eine einen durch nach bei pro Jahr zum zur von vom ist sind wurde wurden
werden nicht auch sehr mehr weniger etwa rund seit dabei damit noch schon jetzt hat den dem
als aus über unter alle jede jeden dort hier heute früher später zuerst danach
Betrieb Beleuchtung LED Leuchten Halle Lager Büro Werkstatt Heizung Heizkessel Gaskessel
Fernwärme Abwärme Dämmung Fenster Dach Fassade Lüftung Lüftungsanlage Druckluft Leckagen
Kompressor Motoren Pumpen Frequenzumrichter Kälteanlage Kühlung Serverraum Rechenzentrum
Fuhrpark Elektroautos Ladesäulen Lastenrad Dienstrad Jobticket Homeoffice Videokonferenzen
Dienstreisen Bahn Papier Recycling Verpackung Mehrweg Lieferanten Einkauf regional Kantine
Ökostrom Zeitschaltuhr Bewegungsmelder Präsenzmelder Thermostat Raumtemperatur
Nachtabsenkung Wochenende Standby Steckdosenleiste Messung Zähler Lastgang Spitzenlast
Energieaudit Mitarbeitende Schulung Team Geschäftsführung Förderung Zuschuss Amortisation
Investition Monate Jahre Tonnen Kilowattstunden Prozent Euro Umstellung Austausch Wartung
Sanierung Planung Angebot Handwerker Dienstleister Beratung Solarthermie Speicher
Batteriespeicher Warmwasser Boiler Durchlauferhitzer Spülmaschine Produktion Maschinen
Schichtbetrieb Leerlauf Abschaltung Abend Nacht Sommer Winter Heizperiode Hallentore
Schnelllauftore Luftschleier Gebäudeleittechnik Regelung Hydraulik Abgleich Ventile
Umwälzpumpe Isolierung Rohrleitungen Dachfläche Carport Parkplatz Kunden Besucher Gäste
deutlich spürbar einfach schnell günstig effizient alt neu modern gesenkt reduziert
umgestellt ausgetauscht installiert eingebaut gemessen geprüft gespart eingespart lohnt
sich gelohnt empfehlen Erfahrung Ergebnis Verbrauch Stromverbrauch Gasverbrauch Rechnung
Lieferung Anbieter Vertrag Tarif Umweltbilanz Klimaschutz Emissionen Bilanz Ziel Maßnahme
Maßnahmen Projekt Idee Vorschlag Azubis Hausmeister Facility Management Kollegen Abteilung
"""
)
TITLE_WORDS = word_list(
    """
LED-Umrüstung Druckluft-Check Nachtabsenkung Heizungstausch Lastenrad Jobticket Ökostrom
Abwärmenutzung Dachdämmung Fenstertausch Lüftungsregelung Serverraum-Kühlung Mehrweg
Dienstrad-Leasing Ladesäulen Spitzenlastmanagement Energieaudit Hydraulischer Abgleich
Standby-Abschaltung Präsenzmelder Solarthermie Batteriespeicher Kantine Recyclingpapier
im Büro in der Halle im Lager in der Werkstatt für alle Standorte mit Förderung
"""
)
FIRST_NAMES = word_list(
    """
Anna Ben Clara David Emma Felix Greta Hannah Ida Jonas Julia Karl Lea Leon Lina Lukas Maja
Marie Max Mia Noah Ole Paul Sophie Tom Yusuf Zeynep Ayşe Mehmet Elif Jürgen Jörg Ute Sabine
"""
)
LAST_NAMES = word_list(
    """
Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter
Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Schmitt
Werner Krause Meier Lehmann Yılmaz Kaya Nowak Kowalski
"""
)
TRADES = word_list(
    """
Bäckerei Brauerei Druckerei Tischlerei Gärtnerei Metzgerei Kanzlei Praxis Autohaus Hotel
Spedition Stahlbau Elektrotechnik Sanitär Galvanik Logistik Verlag Architekten Kita Klinik
"""
)
LEGAL_FORMS = ("GmbH", "KG", "e.K.", "AG", "GmbH & Co. KG", "eG")
MEETING_KINDS = (
    "Netzwerktreffen",
    "Klimastammtisch",
    "Energie-Workshop",
    "Betriebsbesichtigung",
    "Online-Sprechstunde",
    "Mobilitätsforum",
)
PLACES = ("Rathaus, Raum 2.14", "Stadtwerke, Foyer", "IHK, Saal B", "Zentralbibliothek")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much data the benchmark database holds."""

    tips: int
    meetings: int
    members: int
    partners: int


@dataclass(frozen=True, slots=True)
class Case:
    """One command to measure and the percentile limits (percentile, ms) it must keep."""

    label: str
    command: str
    args: str
    runs: int
    limits: tuple[tuple[int, float], ...]
    finds: bool = True


@dataclass(slots=True)
class Result:
    """One case's durations (ns), the tips it matched and the CPU other processes used."""

    case: Case
    durations: list[int]
    matches: int | None = None
    other_cores: float | None = None

    def percentile(self, p: int) -> float:
        """Return the p-th percentile in milliseconds (nearest rank)."""
        ordered = sorted(self.durations)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] / 1e6

    @property
    def passed(self) -> bool:
        """Tell whether every limit of the case is kept."""
        return all(self.percentile(p) <= limit for p, limit in self.case.limits)


@dataclass(slots=True)
class UnitOfWork:
    """What one request sent to the database: its SQL statements and the worker-thread calls."""

    statements: list[tuple[str, tuple[Any, ...]]]
    hops: int


@dataclass(slots=True)
class StatementLog:
    """SQL statements seen on the engine while recording, with their durations."""

    recording: bool = False
    entries: list[tuple[str, Sequence[Any], int]] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tips", type=int, default=100_000)
    parser.add_argument("--meetings", type=int, default=1_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--partners", type=int, default=300)
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per command (default: 200 and 100 for /tips)"
    )
    parser.add_argument("--regenerate", action="store_true", help="ignore a cached database")
    parser.add_argument(
        "--explain", action="store_true", help="also time each SQL statement and show its plan"
    )
    return parser.parse_args(argv)


def found_in(word: str, text: str) -> bool:
    """Tell whether a tip search for the word finds the text, the way the index does."""
    stemmed = stem(word)
    prefixes, whole = inner_forms(fold(word), stemmed)
    parts = compound_parts(text).split()
    return (
        any(token.startswith(stemmed) for token in stems(text))
        or any(part.startswith(prefix) for part in parts for prefix in prefixes)
        or any(part in whole for part in parts)
    )


def check_vocabulary() -> None:
    """Refuse filler words that a search word would find, as a word or inside a compound."""
    for token in re.findall(r"\w+", " ".join(FILLER + TITLE_WORDS)):
        clash = [word for word in (*SEARCH_WORDS, ABSENT_WORD) if found_in(word, token)]
        if clash:
            raise ValueError(f"filler word {token!r} would match the search word {clash[0]!r}")


def cache_stem(sizes: Sizes) -> str:
    """Return the start of the cached database's file name for these sizes."""
    return f"klimabot-t{sizes.tips}-m{sizes.meetings}-n{sizes.members}-p{sizes.partners}-"


def cache_path(sizes: Sizes) -> Path:
    """Return the cached database file for these sizes, the seed and the schema."""
    digest = hashlib.sha256(f"{GENERATOR_VERSION}:{SEED}".encode())
    for migration in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(migration.read_bytes())
    return DATA / f"{cache_stem(sizes)}{digest.hexdigest()[:12]}.db"


def sqlite_url(path: Path) -> str:
    """Return the async SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def chunked(rows: Iterable[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    """Yield the rows in lists of at most ``size``."""
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


async def insert_rows(
    connection: AsyncConnection, model: type[DeclarativeBase], rows: Iterable[dict[str, Any]]
) -> int:
    """Insert rows in executemany chunks and return how many there were."""
    count = 0
    for chunk in chunked(rows):
        await connection.execute(insert(model), chunk)
        count += len(chunk)
    return count


def partner_rows(sizes: Sizes, now: dt.datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Yield partner organisations with unique names."""
    names: set[str] = set()
    for partner_id in range(1, sizes.partners + 1):
        name = ""
        while not name or fold_name(name) in names:
            name = f"{rng.choice(TRADES)} {rng.choice(LAST_NAMES)} {rng.choice(LEGAL_FORMS)}"
        names.add(fold_name(name))
        joined = now - dt.timedelta(days=rng.uniform(30, 5 * 365))
        yield {
            "id": partner_id,
            "name": name,
            "name_folded": fold_name(name),
            "sector": rng.choice(TRADES),
            "joined": joined.date(),
            "website": f"https://partner{partner_id}.example",
            "description": None,
            "created_at": joined,
        }


def display_name(member_id: int) -> str:
    """Return a member's display name, the same at generation and in requests."""
    return f"{FIRST_NAMES[member_id % len(FIRST_NAMES)]} {LAST_NAMES[member_id % len(LAST_NAMES)]}"


def member_rows(sizes: Sizes, now: dt.datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Yield members; about a third represent a partner organisation."""
    for member_id in range(1, sizes.members + 1):
        yield {
            "id": member_id,
            "display_name": display_name(member_id),
            "language": rng.choices(["de", "en", None], weights=[7, 1, 2])[0],
            "partner_id": rng.randint(1, sizes.partners) if rng.random() < 0.3 else None,
            "created_at": now - dt.timedelta(days=rng.uniform(1, 3 * 365)),
        }


def identity_rows(sizes: Sizes, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Yield a Telegram identity for every member and a Matrix one for some."""
    for member_id in range(1, sizes.members + 1):
        yield {
            "platform": Platform.TELEGRAM.value,
            "user_id": str(TELEGRAM_IDS + member_id),
            "member_id": member_id,
        }
        if rng.random() < 0.3:
            yield {
                "platform": Platform.MATRIX.value,
                "user_id": f"@member{member_id}:klimapakt.example",
                "member_id": member_id,
            }


def meeting_rows(sizes: Sizes, now: dt.datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Yield meetings: a tenth in the past year, the rest over the next three years."""
    for meeting_id in range(1, sizes.meetings + 1):
        past = meeting_id <= sizes.meetings // 10
        days = -rng.uniform(1, 365) if past else rng.uniform(0.5, 3 * 365)
        starts = (now + dt.timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        online = rng.random() < 0.3
        yield {
            "id": meeting_id,
            "title": f"{rng.choice(MEETING_KINDS)} Nr. {meeting_id}",
            "starts_at": starts,
            "ends_at": starts + dt.timedelta(hours=2) if rng.random() < 0.8 else None,
            "location": None if online else rng.choice(PLACES),
            "online_url": f"https://meet.example/klimapakt-{meeting_id}" if online else None,
            "agenda": " ".join(rng.choices(FILLER, k=30)),
            "cancelled_at": now if rng.random() < 0.03 else None,
            "created_at": now - dt.timedelta(days=rng.uniform(30, 400)),
        }


def rsvp_rows(sizes: Sizes, now: dt.datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Yield each member's answers to one to six meetings chosen at random."""
    meetings = range(1, sizes.meetings + 1)
    for member_id in range(1, sizes.members + 1):
        for meeting_id in rng.sample(meetings, min(rng.randint(1, 6), sizes.meetings)):
            yield {
                "meeting_id": meeting_id,
                "member_id": member_id,
                "answer": rng.choices(list(Answer), weights=[60, 15, 25])[0],
                "answered_at": now - dt.timedelta(days=rng.uniform(0, 60)),
            }


def tip_rows(sizes: Sizes, now: dt.datetime, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Yield tips whose search words occur in exactly the planned share of tips."""
    tip_ids = range(1, sizes.tips + 1)
    carriers = {
        word: set(rng.sample(tip_ids, round(share * sizes.tips)))
        for word, share in SEARCH_WORDS.items()
    }
    titles: set[tuple[int, str]] = set()
    for tip_id in tip_ids:
        words = rng.choices(FILLER, k=rng.randint(40, 90))
        title_words = rng.choices(TITLE_WORDS, k=rng.randint(2, 4))
        for word, ids in carriers.items():
            if tip_id in ids:
                target = title_words if rng.random() < IN_TITLE else words
                target.insert(rng.randrange(len(target) + 1), word)
        partner_id = rng.randint(1, sizes.partners)
        title = " ".join(title_words)
        while (partner_id, title) in titles:
            title += f" {rng.choice(TITLE_WORDS)}"
        titles.add((partner_id, title))
        yield {
            "id": tip_id,
            "partner_id": partner_id,
            "title": title[:200],
            "category": rng.choice(list(Category)),
            "text": sentences(words, rng),
            "co2_t_per_year": round(rng.lognormvariate(0, 1.2), 1) if rng.random() < 0.7 else None,
            "endorsement_count": int(rng.expovariate(1 / 3)),
            "shared_by": rng.randint(1, sizes.members) if rng.random() < 0.8 else None,
            "hidden_at": now if rng.random() < 0.01 else None,
            "created_at": now - dt.timedelta(days=rng.uniform(0, 3 * 365)),
        }


def sentences(words: list[str], rng: random.Random) -> str:
    """Join words into sentences of eight to fourteen words."""
    out: list[str] = []
    position = 0
    while position < len(words):
        length = rng.randint(8, 14)
        sentence = words[position : position + length]
        out.append(sentence[0][:1].upper() + " ".join(sentence)[1:] + ".")
        position += length
    return " ".join(out)


async def generate(path: Path, sizes: Sizes) -> float:
    """Create and fill a database file; return how long it took in seconds."""
    check_vocabulary()
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    for stale in DATA.glob(f"{partial.name}*"):
        stale.unlink()
    rng = random.Random(SEED)
    now = dt.datetime.now(dt.UTC)
    engine = await open_database(sqlite_url(partial))
    try:
        async with engine.begin() as connection:
            counts = {
                "partners": await insert_rows(connection, Partner, partner_rows(sizes, now, rng)),
                "members": await insert_rows(connection, Member, member_rows(sizes, now, rng)),
                "identities": await insert_rows(connection, Identity, identity_rows(sizes, rng)),
                "meetings": await insert_rows(connection, Meeting, meeting_rows(sizes, now, rng)),
                "rsvps": await insert_rows(connection, Rsvp, rsvp_rows(sizes, now, rng)),
                "tips": await insert_rows(connection, Tip, tip_rows(sizes, now, rng)),
            }
    finally:
        # Closing the last connection checkpoints the WAL into the database file.
        await engine.dispose()
    partial.replace(path)
    seconds = time.perf_counter() - started
    meta = {"generated_at": now.isoformat(), "seconds": round(seconds, 1), "rows": counts}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return seconds


async def prepared_database(sizes: Sizes, *, regenerate: bool) -> tuple[Path, dict[str, Any]]:
    """Return the cached database for these sizes, generating it when needed."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = cache_path(sizes)
    meta_path = path.with_suffix(".json")
    reason = "--regenerate" if regenerate else None
    if reason is None and not (path.exists() and meta_path.exists()):
        reason = "not cached"
    if reason is None:
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(meta["generated_at"])
        if age > MAX_CACHE_AGE:
            reason = f"cached copy is {age.days} days old"
        else:
            print(f"database: {path.name} (cached; generation took {meta['seconds']} s)")
            return path, meta
    # Copies made for other migrations are of no further use and take 170 MB each.
    for stale in DATA.glob(f"{cache_stem(sizes)}*"):
        stale.unlink()
    print(f"database: generating {path.name} ({reason}) ...", flush=True)
    seconds = await generate(path, sizes)
    print(f"database: generated in {seconds:.1f} s")
    return path, json.loads(meta_path.read_text(encoding="utf-8"))


def cases(runs: int | None) -> list[Case]:
    """Return the commands to measure, with their targets."""
    meetings_runs, tips_runs = runs or 200, runs or 100
    any_query = ((99, 100.0),)
    searches = [
        Case(
            f"/tips {word} ({share:.0%})",
            "tips",
            word,
            tips_runs,
            ((95, 20.0), *any_query) if share < RARE_SHARE else any_query,
        )
        for word, share in SEARCH_WORDS.items()
    ]
    rare, common = (
        min(SEARCH_WORDS, key=SEARCH_WORDS.__getitem__),
        max(SEARCH_WORDS, key=SEARCH_WORDS.__getitem__),
    )
    return [
        Case("/meetings", "meetings", "", meetings_runs, ((99, MEETINGS_P99),)),
        *searches,
        Case(f"/tips {rare} {common}", "tips", f"{rare} {common}", tips_runs, any_query),
        Case(f"/tips {ABSENT_WORD} (0%)", "tips", ABSENT_WORD, tips_runs, any_query, finds=False),
        Case("/tips energy (category)", "tips", Category.ENERGY.value, tips_runs, any_query),
        Case("/tips (bare)", "tips", "", tips_runs, any_query),
    ]


async def senders(engine: AsyncEngine) -> list[Sender]:
    """Return every member's Telegram identity as a request sender.

    Each has written from their private chat a moment ago, as in an active network, so
    no request also notes where its sender wrote from.
    """
    async with engine.begin() as connection:
        await connection.execute(
            update(Identity)
            .where(Identity.platform == Platform.TELEGRAM.value)
            .values(chat_id=Identity.user_id, last_seen_at=dt.datetime.now(dt.UTC))
        )
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(Identity.user_id, Member.display_name)
            .join(Member, Member.id == Identity.member_id)
            .where(Identity.platform == Platform.TELEGRAM.value)
            .order_by(Identity.member_id)
        )
        return [Sender(UserId(user_id), name) for user_id, name in rows]


async def handle(dispatcher: Dispatcher, case: Case, sender: Sender) -> tuple[int, str]:
    """Handle one request and render the reply; return the duration and the plain text."""
    request = Request(Platform.TELEGRAM, ChatId(sender.user_id), sender, case.command, case.args)
    started = time.perf_counter_ns()
    reply = await dispatcher.handle(request)
    plain = to_plain(reply.text) if reply is not None else ""
    elapsed = time.perf_counter_ns() - started
    if reply is None or "(ref: " in plain or bool(reply.buttons) != case.finds:
        raise RuntimeError(f"unexpected reply to /{case.command} {case.args}: {plain!r}")
    return elapsed, plain


def cpu_seconds() -> tuple[float, float, float] | None:
    """Return wall time, CPU time of all processes and CPU time of this one (Linux only)."""
    try:
        ticks = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait is busy.
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), busy, own.user + own.system


def other_cores(before: tuple[float, float, float] | None) -> float | None:
    """Return how many cores other processes kept busy since ``before``, on average."""
    after = cpu_seconds()
    if before is None or after is None or after[0] <= before[0]:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, others / (after[0] - before[0]))


async def measure(dispatcher: Dispatcher, case: Case, members: Iterator[Sender]) -> Result:
    """Warm up, then handle the case's runs, each as the next member."""
    for _ in range(min(WARMUP, case.runs)):
        await handle(dispatcher, case, next(members))
    before = cpu_seconds()
    durations = [(await handle(dispatcher, case, next(members)))[0] for _ in range(case.runs)]
    return Result(case, durations, other_cores=other_cores(before))


def result_of(results: list[Result], command: str) -> Result:
    """Return the result of the first case of a command."""
    return next(result for result in results if result.case.command == command)


async def match_count(dispatcher: Dispatcher, case: Case) -> int | None:
    """Return how many tips the bot reports for a /tips case."""
    if case.command != "tips":
        return None
    async with dispatcher.sessions() as session:
        page: TipPage
        if not case.args:
            page = await top_tips(session, limit=1)
        elif case.args == Category.ENERGY.value:
            page = await tips_in_category(session, Category.ENERGY, limit=1)
        else:
            page = await search_tips(session, case.args, limit=1)
        return page.total


def print_table(results: list[Result], tips: int) -> None:
    """Print the figures with their targets."""
    header = (
        f"{'command':<34} {'runs':>5} {'matches':>15} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f"  {'target':<20} {'result':<6} {'others':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for result in results:
        matches = (
            "" if result.matches is None else f"{result.matches} ({result.matches / tips:.1%})"
        )
        target = " & ".join(f"p{p}<={limit:g}" for p, limit in result.case.limits)
        others = "" if result.other_cores is None else f"{result.other_cores:.2f}"
        print(
            f"{result.case.label:<34} {len(result.durations):>5} {matches:>15}"
            f" {result.percentile(50):>8.2f} {result.percentile(95):>8.2f}"
            f" {result.percentile(99):>8.2f}  {target:<20}"
            f" {'PASS' if result.passed else 'FAIL':<6} {others:>6}"
        )
    print(
        "others: cores kept busy by other processes meanwhile; figures above about 0.2 are"
        " inflated by contention for the 2 cores"
    )


def record_statements(engine: AsyncEngine) -> StatementLog:
    """Listen to the engine and log each SQL statement with its duration while recording."""
    log = StatementLog()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, _statement: str, _params: Any, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter_ns()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if log.recording:
            started = conn.info.pop("bench_started", None) or time.perf_counter_ns()
            elapsed = time.perf_counter_ns() - started
            log.entries.append((statement, tuple(params or ()), elapsed))

    return log


async def query_plan(engine: AsyncEngine, statement: str, params: Sequence[Any]) -> list[str]:
    """Return SQLite's EXPLAIN QUERY PLAN for a statement, indented by depth."""
    async with engine.connect() as connection:
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", tuple(params))
        depth: dict[int, int] = {0: 0}
        plan = []
        for row in rows:
            # Columns: id, parent, notused, detail.
            values: tuple[Any, ...] = tuple(row)
            node, parent, detail = values[0], values[1], values[3]
            depth[node] = depth.get(parent, 0) + 1
            plan.append("  " * depth[node] + detail)
        return plan


async def explain(
    engine: AsyncEngine, dispatcher: Dispatcher, log: StatementLog, members: Iterator[Sender]
) -> None:
    """Print each case's SQL statements with their median time and query plan."""
    print(f"\nSQL statements per command (median of {EXPLAIN_RUNS} runs, incl. driver hop)")
    for case in cases(EXPLAIN_RUNS):
        per_run: list[list[tuple[str, Sequence[Any], int]]] = []
        totals = []
        for _ in range(case.runs):
            log.entries.clear()
            log.recording = True
            elapsed, _plain = await handle(dispatcher, case, next(members))
            log.recording = False
            per_run.append(list(log.entries))
            totals.append(elapsed)
        sql_total = statistics.median(sum(e[2] for e in run) for run in per_run) / 1e6
        print(
            f"\n== {case.label}: command {statistics.median(totals) / 1e6:.2f} ms,"
            f" SQL {sql_total:.2f} ms"
        )
        for index, (statement, params, _ns) in enumerate(per_run[-1]):
            median = statistics.median(run[index][2] for run in per_run if len(run) > index)
            print(f"  {median / 1e6:8.2f} ms  {' '.join(statement.split())[:150]}")
            if statement.lstrip().upper().startswith("SELECT"):
                for line in await query_plan(engine, statement, params):
                    print(f"{'':14}{line}")


async def capture(
    engine: AsyncEngine, dispatcher: Dispatcher, case: Case, sender: Sender
) -> UnitOfWork:
    """Handle one request; record its SQL statements and count its calls to aiosqlite's thread.

    Every call of ``aiosqlite.Connection._execute`` is one hop from the event loop to the
    connection's worker thread and back (cursor, execute, fetch, close, commit, rollback).
    """
    statements: list[tuple[str, tuple[Any, ...]]] = []
    hops = 0

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, tuple(params or ())))

    original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hops
        hops += 1
        return await original(self, fn, *args, **kwargs)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    setattr(aiosqlite.Connection, "_execute", counted)  # noqa: B010 - mypy: a method
    try:
        await handle(dispatcher, case, sender)
    finally:
        setattr(aiosqlite.Connection, "_execute", original)  # noqa: B010
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    return UnitOfWork(statements, hops)


def replay(path: Path, unit: UnitOfWork, runs: int) -> list[int]:
    """Time the unit's statements through sqlite3 directly, as storage.db sets it up (ns)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=10000",
            "cache_size=-32000",
        ):
            connection.execute(f"PRAGMA {pragma}")
        durations = []
        for _ in range(WARMUP + runs):
            started = time.perf_counter_ns()
            for statement, params in unit.statements:
                connection.execute(statement, params).fetchall()
            connection.commit()
            connection.rollback()  # the pool's reset on return
            durations.append(time.perf_counter_ns() - started)
        return durations[WARMUP:]
    finally:
        connection.close()


class Inline:
    """Run the SQLite calls of chosen aiosqlite connections on the event loop, not its thread.

    A baseline only: the same dispatcher and SQL with no hops between the event loop and
    aiosqlite's worker thread. Its connections must allow other threads
    (``check_same_thread=false``); nothing else runs on them meanwhile.
    """

    def __init__(self, connections: set[aiosqlite.Connection]) -> None:
        self.connections = connections
        self.calls = 0
        self.original: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute
        inline = self

        async def execute(
            connection: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any
        ) -> Any:
            if connection in inline.connections:
                inline.calls += 1
                return fn(*args, **kwargs)
            return await inline.original(connection, fn, *args, **kwargs)

        setattr(aiosqlite.Connection, "_execute", execute)  # noqa: B010 - mypy: a method

    @classmethod
    async def of(cls, engine: AsyncEngine) -> Inline:
        """Run the SQLite calls of the engine's one pooled connection on the event loop."""
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            if not isinstance(raw.driver_connection, aiosqlite.Connection):
                raise TypeError(f"not an aiosqlite connection: {raw.driver_connection!r}")
            return cls({raw.driver_connection})

    def close(self) -> None:
        """Put aiosqlite back as it was."""
        setattr(aiosqlite.Connection, "_execute", self.original)  # noqa: B010


async def measure_meetings(
    dispatchers: tuple[Dispatcher, Dispatcher],
    path: Path,
    unit: UnitOfWork,
    case: Case,
    members: Iterator[Sender],
) -> tuple[Result, Result, Result]:
    """Time /meetings, the same without thread hops, and its SQL alone, in turns of 20 runs."""
    timed: tuple[list[int], list[int], list[int]] = ([], [], [])
    before = cpu_seconds()
    for dispatcher in dispatchers:
        for _ in range(WARMUP):
            await handle(dispatcher, case, next(members))
    while len(timed[0]) < case.runs:
        turn = min(BLOCK, case.runs - len(timed[0]))
        for dispatcher, durations in zip(dispatchers, timed, strict=False):
            for _ in range(turn):
                durations.append((await handle(dispatcher, case, next(members)))[0])
        timed[2].extend(replay(path, unit, turn))
    others = other_cores(before)
    return (
        Result(case, timed[0], other_cores=others),
        Result(case, timed[1], other_cores=others),
        Result(case, timed[2], other_cores=others),
    )


def print_baseline(unit: UnitOfWork, meetings: Result, inline: Result, direct: Result) -> None:
    """Print /meetings beside the same without thread hops and its SQL through sqlite3."""
    selects = sum(1 for s, _ in unit.statements if s.lstrip().upper().startswith("SELECT"))
    print(
        f"\n/meetings, one unit of work: {len(unit.statements)} statements ({selects} SELECT),"
        f" {unit.hops} calls into aiosqlite's worker thread; {len(meetings.durations)} runs of"
        f" each, in turns (others {meetings.other_cores or 0:.2f})"
    )
    rows = (
        ("Klimabot", meetings),
        ("the same, SQLite on the event loop (no hops)", inline),
        ("its statements through sqlite3 alone", direct),
    )
    for label, result in rows:
        ratio = result.percentile(99) / direct.percentile(99)
        print(
            f"  {label:<46} p50 {result.percentile(50):6.2f} ms  p99"
            f" {result.percentile(99):6.2f} ms  ({ratio:5.1f} x sqlite3 at p99)"
        )
    hop = (meetings.percentile(50) - inline.percentile(50)) / unit.hops
    python = inline.percentile(50) - direct.percentile(50)
    print(
        f"  at the median: {unit.hops} hops cost {unit.hops * hop:.2f} ms ({hop * 1000:.0f} us"
        f" each), SQL {direct.percentile(50):.2f} ms, Python (dispatch, ORM, handler, markup)"
        f" {python:.2f} ms"
    )
    one = inline.percentile(99) + hop
    reach = "would reach" if one <= MEETINGS_P99 else "would not reach"
    print(
        f"  one hop per unit of work: p99 about {one:.2f} ms, {reach} p99 <= {MEETINGS_P99:g}"
        f" ms; each statement fewer saves 4 hops, about {4 * hop:.2f} ms, plus its SQL"
    )


def print_environment(path: Path, meta: dict[str, Any]) -> None:
    """Print the machine, versions, code and database the figures belong to."""
    size_mb = path.stat().st_size / 1e6
    print(f"code: {code_version()}")
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores"
        f" (this process may use CPU {','.join(map(str, usable)) or '?'}),"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    rows = ", ".join(f"{count} {table}" for table, count in meta["rows"].items())
    print(f"data: {rows}; {size_mb:.0f} MB; generated {meta['generated_at'][:16]} UTC")


async def upcoming_count(engine: AsyncEngine) -> int:
    """Return how many meetings have not started yet and are not cancelled."""
    async with engine.connect() as connection:
        now = dt.datetime.now(dt.UTC)
        count = await connection.scalar(
            select(func.count())
            .select_from(Meeting)
            .where(Meeting.starts_at > now, Meeting.cancelled_at.is_(None))
        )
        return int(count or 0)


async def run(args: argparse.Namespace) -> bool:
    """Prepare the database, measure every case and print the table; tell if all passed."""
    sizes = Sizes(args.tips, args.meetings, args.members, args.partners)
    path, meta = await prepared_database(sizes, regenerate=args.regenerate)
    print_environment(path, meta)
    engine = await open_database(sqlite_url(path))
    # The same database for the baseline without thread hops (see Inline).
    bare = await open_database(sqlite_url(path) + "?check_same_thread=false")
    log = record_statements(engine) if args.explain else None
    try:
        dispatcher = build_dispatcher(Config(), session_factory(engine))
        # Round robin over all members never hits the real limit; keep its cost, not its cap.
        dispatcher.allowance = Allowance(limit=10**9)
        members = itertools.cycle(await senders(engine))
        print(f"meetings not started yet: {await upcoming_count(engine)} of {sizes.meetings}")
        results = []
        for case in cases(args.runs):
            print(f"measuring {case.label} ...", flush=True)
            if case.command == "meetings":
                unit = await capture(engine, dispatcher, case, next(members))
                inline = await Inline.of(bare)
                try:
                    pair = (dispatcher, build_dispatcher(Config(), session_factory(bare)))
                    pair[1].allowance = dispatcher.allowance
                    result, hopless, direct = await measure_meetings(
                        pair, path, unit, case, members
                    )
                finally:
                    inline.close()
                if inline.calls < unit.hops * case.runs:
                    raise RuntimeError(f"only {inline.calls} calls ran on the event loop")
            else:
                result = await measure(dispatcher, case, members)
            result.matches = await match_count(dispatcher, case)
            results.append(result)
        print_table(results, sizes.tips)
        print_baseline(unit, result_of(results, "meetings"), hopless, direct)
        if log is not None:
            await explain(engine, dispatcher, log, members)
    finally:
        await bare.dispose()
        await engine.dispose()
    return all(result.passed for result in results)


def main() -> None:
    """Run the benchmark; exit with status 1 when a target is missed."""
    passed = asyncio.run(run(parse_args()))
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
