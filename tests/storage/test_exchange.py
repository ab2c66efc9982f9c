"""Tests for the import and export file, on a real SQLite database."""

from __future__ import annotations

import datetime as dt
import sqlite3
import string
from collections.abc import Awaitable, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from alembic import command
from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import alembic_config, open_database, session_factory, upgrade
from storage.exchange import (
    MAX_PROBLEMS,
    PROBLEM_MESSAGES,
    Counts,
    ImportFileError,
    ImportSummary,
    NetworkData,
    PartnerData,
    Problem,
    export_data,
    import_data,
    import_file,
    parse_import,
    plan,
    writing,
    yamlfile,
)
from storage.models import Category, Meeting, Partner, Tip
from tests.helpers import NOW

# The fixtures of tests/storage/conftest.py.
Sessions = async_sessionmaker[AsyncSession]
MakeDatabase = Callable[[], Awaitable[Sessions]]
StoredRows = Callable[[Sessions], Awaitable[dict[str, list[tuple[object, ...]]]]]

TZ = ZoneInfo("Europe/Berlin")
DATA = Path(__file__).parent.parent / "data"
EXAMPLE = (DATA / "import-example.yaml").read_text(encoding="utf-8")
BILLION_LAUGHS = (DATA / "import-billion-laughs.yaml").read_text(encoding="utf-8")

# What `klimabot export` writes after importing the example file.
EXAMPLE_EXPORT = """\
partners:
  - name: IHK Düsseldorf
    sector: Kammer
    joined: 2022-09-01
  - name: Landeshauptstadt Düsseldorf
    sector: Öffentliche Verwaltung
    joined: 2022-09-01
    website: https://example.org/stadt
  - name: WEIQIAO Germany GmbH
    sector: Textil und Aluminium
    joined: 2022-10-01
    description: |-
      Europäische Tochtergesellschaft und europäische Zentrale der
      Shandong Weiqiao Pioneering Group.

meetings:
  - title: 1. Netzwerktreffen
    starts: 2022-12-06 14:00
    ends: 2022-12-06 17:00
    location: Rathaus Düsseldorf
    agenda: Formate und Schwerpunktthemen für den Weg zur CO2-Reduzierung
  - title: 2. Netzwerktreffen
    starts: 2023-03-29 14:00
    ends: 2023-03-29 17:00
    location: IHK Düsseldorf
    online_url: https://example.org/netzwerktreffen-2

tips:
  - title: Ökostrom für alle Standorte
    partner: IHK Düsseldorf
    category: energy
    text: Alle Standorte beziehen seit Januar zertifizierten Ökostrom.
  - title: Dienstfahrräder statt Dienstwagen
    partner: Landeshauptstadt Düsseldorf
    category: mobility
    text: Für Fahrten unter fünf Kilometern stehen Dienstfahrräder und Pedelecs bereit.
    co2_t_per_year: 12.0
  - title: Druckluftleckagen beseitigt
    partner: WEIQIAO Germany GmbH
    category: processes
    text: Mit einem Ultraschall-Lecksuchgerät haben wir 14 Leckagen im Druckluftnetz gefunden
      und abgedichtet. Der Kompressor läuft seitdem deutlich seltener.
    co2_t_per_year: 4.2
"""


async def import_text(
    sessions: Sessions, yaml_text: str, now: dt.datetime | None = None
) -> ImportSummary:
    """Import a file as `klimabot import` does: check it, write it, commit."""
    data = parse_import(yaml_text, TZ)
    async with sessions() as session:
        summary = await import_data(session, data, now=now)
        await session.commit()
    return summary


async def export_text(sessions: Sessions) -> str:
    """Export as `klimabot export` does."""
    async with sessions() as session:
        return await export_data(session, TZ)


def problems_in(yaml_text: str) -> list[tuple[str, str | None, str]]:
    """Return where and what the problems of an import file are."""
    with pytest.raises(ImportFileError) as caught:
        parse_import(yaml_text, TZ)
    for problem in caught.value.problems:
        template_fields = {
            name
            for _text, name, _spec, _conv in string.Formatter().parse(
                PROBLEM_MESSAGES[problem.code]
            )
            if name
        }
        assert template_fields == set(problem.detail), problem
        assert problem.message()
    return [(problem.entry, problem.field, problem.code) for problem in caught.value.problems]


def tip(**fields: str) -> str:
    """Write a one-tip file with sensible fields, some replaced or added."""
    values = {"title": "Tipp", "partner": "Acme", "category": "heat", "text": "Hilft."}
    return "tips:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in (values | fields).items())


def meeting(**fields: str) -> str:
    """Write a one-meeting file with sensible fields, some replaced or added."""
    values = {"title": "Treffen", "starts": "2023-03-29 14:00", "location": "Rathaus"}
    values |= fields
    return "meetings:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in values.items() if v)


def series(**fields: str) -> str:
    """Write a one-series file with sensible fields, some replaced or added."""
    values = {
        "title": "Quartalstreffen",
        "starts": "2027-01-13 14:00",
        "rule": "FREQ=MONTHLY;INTERVAL=3;BYDAY=+2WE",
        "location": "IHK",
    } | fields
    return "series:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in values.items() if v)


def partner(**fields: str) -> str:
    """Write a one-partner file with sensible fields, some replaced or added."""
    values = {"name": "Acme", "joined": "2022-10-01"} | fields
    return "partners:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in values.items() if v)


CASES = [
    pytest.param("partners:\n  - name: [Acme\n", "file", None, "yaml_syntax", id="yaml"),
    pytest.param(
        "partners:\n  - name: Acme\n    name: Beta\n",
        "file",
        None,
        "duplicate_key",
        id="key-twice",
    ),
    pytest.param("- Acme\n", "file", None, "not_a_mapping", id="file-is-a-list"),
    pytest.param("members: []\n", "file", None, "unknown_section", id="section"),
    pytest.param("partners:\n  name: Acme\n", "partners", None, "not_a_list", id="not-a-list"),
    pytest.param("partners:\n  - Acme\n", "partners[1]", None, "not_a_mapping", id="entry-text"),
    pytest.param(partner(joined=""), "partners[1] (Acme)", "joined", "missing", id="missing"),
    pytest.param(tip(title="'  '"), "tips[1]", "title", "missing", id="blank"),
    pytest.param(
        partner(city="Düsseldorf"), "partners[1] (Acme)", "city", "unknown_field", id="field"
    ),
    pytest.param(partner(name="2035"), "partners[1]", "name", "wrong_type", id="number-name"),
    pytest.param(partner(sector="yes"), "partners[1] (Acme)", "sector", "wrong_type", id="bool"),
    pytest.param(tip(text="[a, b]"), "tips[1] (Tipp)", "text", "wrong_type", id="list-as-text"),
    pytest.param(
        partner(joined="2022-13-01"), "partners[1] (Acme)", "joined", "not_a_date", id="month"
    ),
    pytest.param(
        partner(joined="01.10.2022"), "partners[1] (Acme)", "joined", "not_a_date", id="german"
    ),
    pytest.param(
        partner(joined="2022-10-01 10:00"),
        "partners[1] (Acme)",
        "joined",
        "not_a_date",
        id="date-with-time",
    ),
    pytest.param(
        meeting(starts="2023-03-29"),
        "meetings[1] (Treffen)",
        "starts",
        "not_a_datetime",
        id="date-only",
    ),
    pytest.param(
        meeting(starts="29.03.2023 14:00"),
        "meetings[1] (Treffen)",
        "starts",
        "not_a_datetime",
        id="german-datetime",
    ),
    pytest.param(
        meeting(ends="2023-03-29 25:00"),
        "meetings[1] (Treffen)",
        "ends",
        "not_a_datetime",
        id="hour-25",
    ),
    pytest.param(
        meeting(starts="2023-03-26 02:30"),
        "meetings[1] (Treffen)",
        "starts",
        "no_such_time",
        id="spring-forward-gap",
    ),
    pytest.param(
        tip(co2_t_per_year="viel"), "tips[1] (Tipp)", "co2_t_per_year", "not_a_number", id="word"
    ),
    pytest.param(
        tip(co2_t_per_year="4,2"), "tips[1] (Tipp)", "co2_t_per_year", "not_a_number", id="comma"
    ),
    pytest.param(
        tip(co2_t_per_year="true"), "tips[1] (Tipp)", "co2_t_per_year", "not_a_number", id="true"
    ),
    pytest.param(
        tip(co2_t_per_year=".nan"), "tips[1] (Tipp)", "co2_t_per_year", "not_a_number", id="nan"
    ),
    pytest.param(
        tip(co2_t_per_year="-1.5"), "tips[1] (Tipp)", "co2_t_per_year", "negative", id="negative"
    ),
    pytest.param(
        tip(category="Heizung"), "tips[1] (Tipp)", "category", "unknown_category", id="category"
    ),
    pytest.param(
        tip(category="Heat"), "tips[1] (Tipp)", "category", "unknown_category", id="capital"
    ),
    pytest.param(
        partner(sector="x" * 201), "partners[1] (Acme)", "sector", "too_long", id="sector"
    ),
    pytest.param(
        meeting(location="x" * 301),
        "meetings[1] (Treffen)",
        "location",
        "too_long",
        id="location",
    ),
    pytest.param(
        partner(website="example.org"), "partners[1] (Acme)", "website", "bad_url", id="no-scheme"
    ),
    pytest.param(
        meeting(online_url="ftp://example.org/x"),
        "meetings[1] (Treffen)",
        "online_url",
        "bad_url",
        id="ftp",
    ),
    pytest.param(
        meeting(online_url="'https://'"),
        "meetings[1] (Treffen)",
        "online_url",
        "bad_url",
        id="no-host",
    ),
    pytest.param(meeting(location=""), "meetings[1] (Treffen)", None, "no_place", id="no-place"),
    pytest.param(
        meeting(ends="2023-03-29 13:00"),
        "meetings[1] (Treffen)",
        "ends",
        "ends_before_start",
        id="ends-before",
    ),
    pytest.param(
        meeting(ends="2023-03-29T12:00Z"),
        "meetings[1] (Treffen)",
        "ends",
        "ends_before_start",
        id="ends-when-it-starts",
    ),
    pytest.param(BILLION_LAUGHS, "file", None, "too_many_aliases", id="billion-laughs"),
    pytest.param(
        "partners: " + "[" * 100_000 + "]" * 100_000 + "\n", "file", None, "too_deep", id="flow"
    ),
    pytest.param(
        "partners:\n" + "".join(" " * level + "- \n" for level in range(2, 1000)),
        "file",
        None,
        "too_deep",
        id="block-nesting",
    ),
    pytest.param(
        partner(joined="0001-01-01"),
        "partners[1] (Acme)",
        "joined",
        "date_out_of_range",
        id="year-1",
    ),
    pytest.param(
        meeting(starts="9999-12-31 23:30"),
        "meetings[1] (Treffen)",
        "starts",
        "date_out_of_range",
        id="year-9999",
    ),
    pytest.param(
        partner(name='"Acme\\a"'),
        "partners[1] (Acme\\x07)",
        "name",
        "control_character",
        id="bell-in-a-name",
    ),
    pytest.param(
        meeting(title='"Treffen\\tII"'),
        "meetings[1] (Treffen\\x09II)",
        "title",
        "control_character",
        id="tab-in-a-title",
    ),
    pytest.param(
        tip(co2_t_per_year="1.0e+40"), "tips[1] (Tipp)", "co2_t_per_year", "too_large", id="1e40"
    ),
    pytest.param(
        tip(co2_t_per_year="1" + "0" * 400),
        "tips[1] (Tipp)",
        "co2_t_per_year",
        "too_large",
        id="huge-integer",
    ),
    pytest.param(
        meeting(capacity="0"), "meetings[1] (Treffen)", "capacity", "not_a_capacity", id="none"
    ),
    pytest.param(
        meeting(capacity="12.5"), "meetings[1] (Treffen)", "capacity", "not_a_capacity", id="half"
    ),
    pytest.param(
        series(rule="FREQ=HOURLY"),
        "series[1] (Quartalstreffen)",
        "rule",
        "bad_rule",
        id="hourly",
    ),
    pytest.param(
        series(rule="jeden Monat"),
        "series[1] (Quartalstreffen)",
        "rule",
        "bad_rule",
        id="words-for-a-rule",
    ),
    pytest.param(
        series(exceptions="\n      - occurrence: 2027-04-15 14:00\n        cancelled: true"),
        "series[1] (Quartalstreffen)",
        "exceptions[1].occurrence",
        "not_an_occurrence",
        id="no-such-occurrence",
    ),
    pytest.param(
        series(exceptions="\n      - occurrence: 2027-04-14 14:00\n        room: 2"),
        "series[1] (Quartalstreffen)",
        "exceptions[1].room",
        "unknown_field",
        id="exception-field",
    ),
    pytest.param(
        series(
            exceptions="\n      - occurrence: 2027-04-14 14:00\n        cancelled: true"
            "\n      - occurrence: 2027-04-14 14:00\n        location: Rathaus"
        ),
        "series[1] (Quartalstreffen)",
        "exceptions[2].occurrence",
        "duplicate",
        id="occurrence-twice",
    ),
    pytest.param(
        series(exceptions="2027-04-14"),
        "series[1] (Quartalstreffen)",
        "exceptions",
        "not_a_list",
        id="exceptions-not-a-list",
    ),
    pytest.param(
        series(exceptions="\n      - 2027-04-14 14:00"),
        "series[1] (Quartalstreffen)",
        "exceptions[1]",
        "not_a_mapping",
        id="exception-not-a-mapping",
    ),
    pytest.param(
        series(
            exceptions="\n      - occurrence: 2027-04-14 14:00\n        ends: 2027-04-14 13:00"
        ),
        "series[1] (Quartalstreffen)",
        "exceptions[1].ends",
        "ends_before_start",
        id="exception-ends-first",
    ),
    pytest.param(
        series(location="", online_url=""),
        "series[1] (Quartalstreffen)",
        None,
        "no_place",
        id="series-without-place",
    ),
    pytest.param(
        meeting(cancelled="vielleicht"),
        "meetings[1] (Treffen)",
        "cancelled",
        "not_a_boolean",
        id="cancelled-maybe",
    ),
]


@pytest.mark.parametrize(("yaml_text", "entry", "field", "code"), CASES)
def test_a_problem_names_its_entry_field_and_code(
    yaml_text: str, entry: str, field: str | None, code: str
) -> None:
    assert problems_in(yaml_text) == [(entry, field, code)]


def test_every_problem_code_has_a_message_and_a_test() -> None:
    stored = {"unknown_partner", "duplicate", "other_key", "taken"}  # tested below
    # What a pydantic error no file can cause would say, instead of pydantic's English.
    fallback = {"invalid"}
    tested = {param.values[3] for param in CASES} | stored | fallback
    assert tested == set(PROBLEM_MESSAGES)


def test_a_syntax_error_names_the_line() -> None:
    with pytest.raises(ImportFileError) as caught:
        parse_import("partners:\n  - name: Acme\n    joined: [2022\n", TZ)
    [problem] = caught.value.problems
    assert problem.detail["line"] == "4"
    assert problem.message().startswith("file: the file is not valid YAML (line 4)")


def test_all_problems_of_a_file_are_reported() -> None:
    assert problems_in((DATA / "import-bad.yaml").read_text(encoding="utf-8")) == [
        ("partners[2] (Beta AG)", "city", "unknown_field"),
        ("partners[2] (Beta AG)", "joined", "not_a_date"),
        ("meetings[1] (Netzwerktreffen)", "starts", "not_a_datetime"),
        ("meetings[1] (Netzwerktreffen)", None, "no_place"),
        ("meetings[2] (Werkstattbesuch)", "location", "wrong_type"),
        ("tips[1] (Wärmerückgewinnung)", "category", "unknown_category"),
        ("tips[1] (Wärmerückgewinnung)", "co2_t_per_year", "negative"),
        ("partners[3] (Acme GmbH)", "name", "duplicate"),
    ]


def test_problems_are_capped() -> None:
    entries = "".join(f"  - name: P{i}\n    joined: bald\n" for i in range(60))
    with pytest.raises(ImportFileError) as caught:
        parse_import("partners:\n" + entries, TZ)
    assert len(caught.value.problems) == MAX_PROBLEMS
    assert caught.value.omitted == 10
    assert str(caught.value).startswith("60 problem(s) in the import file; the first: partners[1]")


def test_duplicates_name_both_entries() -> None:
    yaml_text = """\
partners:
  - {name: IHK Düsseldorf, joined: 2022-10-01, key: ihk}
  - {name: ihk düsseldorf, joined: 2022-10-01}   # the same partner: case does not count
  - {name: Acme, joined: 2023-01-01, key: ihk}   # another partner with the same key
meetings:
  - {title: Treffen, starts: 2023-03-29 14:00, location: Rathaus}
  - {title: Treffen, starts: 2023-06-28 14:00, location: Rathaus}   # another time
  - {title: Treffen, starts: "2023-03-29T12:00Z", online_url: "https://example.org"}
tips:
  - {title: Tipp, partner: Acme, category: heat, text: a, key: ihk}  # keys count per section
  - {title: Tipp, partner: ACME, category: heat, text: b}
  - {title: Tipp, partner: IHK Düsseldorf, category: energy, text: c}
"""
    with pytest.raises(ImportFileError) as caught:
        parse_import(yaml_text, TZ)
    ihk = "partners[1] (IHK Düsseldorf)"
    assert caught.value.problems == [
        Problem("partners[2] (ihk düsseldorf)", "name", "duplicate", {"other": ihk}),
        Problem("meetings[3] (Treffen)", "title", "duplicate", {"other": "meetings[1] (Treffen)"}),
        Problem("tips[2] (Tipp)", "title", "duplicate", {"other": "tips[1] (Tipp)"}),
        Problem("partners[3] (Acme)", "key", "duplicate", {"other": ihk}),
    ]


@pytest.mark.parametrize("yaml_text", ["", "# nothing yet\n", "partners:\nmeetings: []\n"])
def test_an_empty_file_holds_nothing(yaml_text: str) -> None:
    assert parse_import(yaml_text, TZ) == NetworkData(timezone=TZ)


async def test_the_example_file_imports(db: Sessions) -> None:
    summary = await import_text(db, EXAMPLE)

    assert summary == ImportSummary(Counts(created=3), Counts(created=2), Counts(created=3))
    async with db() as session:
        weiqiao = await session.scalar(select(Partner).where(Partner.name.like("WEIQIAO%")))
        meetings = (await session.scalars(select(Meeting).order_by(Meeting.starts_at))).all()
        tips = (await session.execute(select(Tip, Partner.name).join(Partner))).all()
    assert weiqiao is not None
    assert (weiqiao.sector, weiqiao.joined, weiqiao.website) == (
        "Textil und Aluminium",
        dt.date(2022, 10, 1),
        None,
    )
    assert weiqiao.description == (
        "Europäische Tochtergesellschaft und europäische Zentrale der\n"
        "Shandong Weiqiao Pioneering Group."
    )
    assert [(m.title, m.starts_at, m.ends_at, m.location, m.online_url) for m in meetings] == [
        (
            "1. Netzwerktreffen",
            dt.datetime(2022, 12, 6, 13, 0, tzinfo=dt.UTC),
            dt.datetime(2022, 12, 6, 16, 0, tzinfo=dt.UTC),
            "Rathaus Düsseldorf",
            None,
        ),
        (
            "2. Netzwerktreffen",
            dt.datetime(2023, 3, 29, 12, 0, tzinfo=dt.UTC),
            dt.datetime(2023, 3, 29, 15, 0, tzinfo=dt.UTC),
            "IHK Düsseldorf",
            "https://example.org/netzwerktreffen-2",
        ),
    ]
    assert sorted((name, t.title, t.category, t.co2_t_per_year) for t, name in tips) == [
        ("IHK Düsseldorf", "Ökostrom für alle Standorte", Category.ENERGY, None),
        (
            "Landeshauptstadt Düsseldorf",
            "Dienstfahrräder statt Dienstwagen",
            Category.MOBILITY,
            12,
        ),
        ("WEIQIAO Germany GmbH", "Druckluftleckagen beseitigt", Category.PROCESSES, 4.2),
    ]


async def test_importing_twice_changes_nothing(db: Sessions, stored_rows: StoredRows) -> None:
    await import_text(db, EXAMPLE)
    before = await stored_rows(db)

    summary = await import_text(db, EXAMPLE)

    assert summary == ImportSummary(Counts(unchanged=3), Counts(unchanged=2), Counts(unchanged=3))
    assert not summary.changed
    assert await stored_rows(db) == before


async def test_an_entry_with_a_stored_key_is_updated(db: Sessions) -> None:
    await import_text(db, EXAMPLE)
    changed = (
        EXAMPLE.replace("sector: Kammer", "sector: Industrie- und Handelskammer")
        .replace("    website: https://example.org/stadt # optional, http:// or https://\n", "")
        .replace("co2_t_per_year: 12", "co2_t_per_year: 14.5")
    )

    summary = await import_text(db, changed)

    assert summary == ImportSummary(
        Counts(updated=2, unchanged=1), Counts(unchanged=2), Counts(updated=1, unchanged=2)
    )
    async with db() as session:
        partners = (await session.scalars(select(Partner).order_by(Partner.name))).all()
        co2 = await session.scalar(select(Tip.co2_t_per_year).where(Tip.title.like("Dienst%")))
        tip_count = len((await session.scalars(select(Tip.id))).all())
    assert [(p.name, p.sector, p.website) for p in partners] == [
        ("IHK Düsseldorf", "Industrie- und Handelskammer", None),
        ("Landeshauptstadt Düsseldorf", "Öffentliche Verwaltung", None),
        ("WEIQIAO Germany GmbH", "Textil und Aluminium", None),
    ]
    assert co2 == 14.5
    assert tip_count == 3


async def test_a_bad_entry_leaves_the_database_as_it_was(
    db: Sessions, stored_rows: StoredRows
) -> None:
    await import_text(db, EXAMPLE)
    before = await stored_rows(db)
    # Good changes and new entries, but one bad tip at the end: none of it may land.
    changed = (
        EXAMPLE.replace("sector: Kammer", "sector: Handelskammer")
        + "  - title: Kaputt\n    partner: IHK Düsseldorf\n    category: heat\n"
        + "    text: Spart viel.\n    co2_t_per_year: -3\n"
    )

    with pytest.raises(ImportFileError) as caught:
        await import_text(db, changed)

    assert [(p.entry, p.field, p.code) for p in caught.value.problems] == [
        ("tips[4] (Kaputt)", "co2_t_per_year", "negative")
    ]
    assert await stored_rows(db) == before


async def test_a_tip_of_an_unknown_partner_writes_nothing(
    db: Sessions, stored_rows: StoredRows
) -> None:
    await import_text(db, EXAMPLE)
    before = await stored_rows(db)
    data = parse_import(
        """\
partners:
  - {name: Neu GmbH, joined: 2023-01-01}
meetings:
  - {title: 3. Netzwerktreffen, starts: 2023-06-28 14:00, location: Rathaus}
tips:
  - {title: Stromsparen, partner: Neu GmbH, category: energy, text: a}
  - {title: Heizen, partner: Unbekannt AG, category: heat, text: b}
  - {title: LED, partner: IHK Düsseldorf, category: energy, text: c}
""",
        TZ,
    )

    async with db() as session:
        with pytest.raises(ImportFileError) as caught:
            await import_data(session, data)
        # Even a commit finds nothing to write: the check ran before any change.
        await session.commit()

    assert caught.value.problems == [
        Problem("tips[2] (Heizen)", "partner", "unknown_partner", {"value": "Unbekannt AG"})
    ]
    assert await stored_rows(db) == before


async def test_a_tip_may_name_a_stored_partner(db: Sessions) -> None:
    await import_text(db, EXAMPLE)

    summary = await import_text(db, tip(partner="IHK Düsseldorf", title="LED-Hallenlicht"))

    assert summary.tips == Counts(created=1)
    async with db() as session:
        names = (
            await session.scalars(
                select(Partner.name).join(Tip).where(Tip.title == "LED-Hallenlicht")
            )
        ).all()
    assert names == ["IHK Düsseldorf"]


@pytest.mark.parametrize(
    ("starts", "utc"),
    [
        # Network-local wall-clock time: summer time is UTC+2, winter time UTC+1.
        ("2023-03-29 14:00", dt.datetime(2023, 3, 29, 12, 0, tzinfo=dt.UTC)),
        ("2022-12-06 14:00", dt.datetime(2022, 12, 6, 13, 0, tzinfo=dt.UTC)),
        ("2023-03-29T14:00", dt.datetime(2023, 3, 29, 12, 0, tzinfo=dt.UTC)),
        ("2023-03-29 14:00:30", dt.datetime(2023, 3, 29, 12, 0, 30, tzinfo=dt.UTC)),
        ("'2023-03-29 14:00'", dt.datetime(2023, 3, 29, 12, 0, tzinfo=dt.UTC)),
        ("!!timestamp 2023-03-29 14:00:00", dt.datetime(2023, 3, 29, 12, 0, tzinfo=dt.UTC)),
        # The first of the two 02:30s when the clocks fall back.
        ("2023-10-29 02:30", dt.datetime(2023, 10, 29, 0, 30, tzinfo=dt.UTC)),
        # An offset says which moment is meant, whatever the network's time zone.
        ("2023-03-29T14:00+01:00", dt.datetime(2023, 3, 29, 13, 0, tzinfo=dt.UTC)),
        ("2023-03-29T14:00:00Z", dt.datetime(2023, 3, 29, 14, 0, tzinfo=dt.UTC)),
        ("2023-10-29T02:30+01:00", dt.datetime(2023, 10, 29, 1, 30, tzinfo=dt.UTC)),
        ("!!timestamp 2023-03-29T14:00:00-05:00", dt.datetime(2023, 3, 29, 19, tzinfo=dt.UTC)),
    ],
)
async def test_meeting_times_are_stored_in_utc(
    db: Sessions, starts: str, utc: dt.datetime
) -> None:
    await import_text(db, meeting(starts=starts))

    async with db() as session:
        stored = await session.scalar(select(Meeting.starts_at))
        raw = await session.scalar(text("SELECT starts_at FROM meetings"))
    assert stored == utc
    assert stored is not None
    assert stored.utcoffset() == dt.timedelta(0)
    assert str(raw).startswith(utc.strftime("%Y-%m-%d %H:%M:%S"))


async def test_export_import_export_gives_the_same_text(make_database: MakeDatabase) -> None:
    first = await make_database()
    await import_text(first, EXAMPLE)
    exported = await export_text(first)
    second = await make_database()

    await import_text(second, exported)

    assert exported == EXAMPLE_EXPORT
    assert await export_text(second) == exported


async def test_importing_the_export_into_the_same_database_changes_nothing(
    db: Sessions, stored_rows: StoredRows
) -> None:
    await import_text(db, EXAMPLE)
    before = await stored_rows(db)

    summary = await import_text(db, await export_text(db))

    assert not summary.changed
    assert await stored_rows(db) == before


async def test_an_ambiguous_local_time_is_exported_with_its_offset(db: Sessions) -> None:
    await import_text(db, meeting(starts="2023-10-29T02:30+01:00"))

    exported = await export_text(db)

    assert "    starts: 2023-10-29T02:30+01:00\n" in exported
    assert not (await import_text(db, exported)).changed


async def test_export_leaves_out_hidden_tips_and_flags_cancelled_meetings(db: Sessions) -> None:
    await import_text(db, EXAMPLE)
    async with db() as session:
        now = dt.datetime.now(dt.UTC)
        await session.execute(
            update(Tip).where(Tip.title.like("Druckluft%")).values(hidden_at=now)
        )
        await session.execute(
            update(Meeting).where(Meeting.title.like("1.%")).values(cancelled_at=now)
        )
        await session.commit()

    exported = await export_text(db)

    assert "Druckluft" not in exported
    assert (
        "  - title: 1. Netzwerktreffen\n"
        "    starts: 2022-12-06 14:00\n"
        "    ends: 2022-12-06 17:00\n"
        "    location: Rathaus Düsseldorf\n"
        "    agenda: Formate und Schwerpunktthemen für den Weg zur CO2-Reduzierung\n"
        "    cancelled: true\n"
        "  - title: 2. Netzwerktreffen\n"
    ) in exported
    assert "Dienstfahrräder statt Dienstwagen" in exported


async def test_an_empty_database_exports_empty_sections(db: Sessions) -> None:
    exported = await export_text(db)

    assert exported == "partners: []\n\nmeetings: []\n\ntips: []\n"
    assert parse_import(exported, TZ) == NetworkData(timezone=TZ)


async def test_long_texts_stay_readable_in_the_export(db: Sessions) -> None:
    agenda = "Begrüßung\nErfahrungsaustausch: CO2-Einsparungen\n\nAusblick   "
    async with db() as session:
        session.add(
            Meeting(
                title="Treffen",
                starts_at=dt.datetime(2023, 6, 28, 12, tzinfo=dt.UTC),
                location="Rathaus",
                agenda=agenda,
            )
        )
        await session.commit()

    exported = await export_text(db)

    assert (
        "    agenda: |-\n"
        "      Begrüßung\n"
        "      Erfahrungsaustausch: CO2-Einsparungen\n"
        "\n"
        "      Ausblick\n"
    ) in exported
    [read_back] = parse_import(exported, TZ).meetings
    assert read_back.agenda == agenda.rstrip()


async def test_a_partner_named_in_another_case_is_the_stored_partner(db: Sessions) -> None:
    await import_text(db, EXAMPLE)
    async with db() as session:
        ihk = await session.scalar(select(Partner.id).where(Partner.name == "IHK Düsseldorf"))

    summary = await import_text(
        db,
        partner(name="ihk düsseldorf", sector="Kammer", joined="2022-09-01")
        + "\n"
        + tip(partner="IHK DÜSSELDORF", title="LED-Hallenlicht"),
    )

    # The file's spelling replaces the stored one, as any other field of the entry would.
    assert summary == ImportSummary(Counts(updated=1), Counts(), Counts(created=1))
    async with db() as session:
        partners = (await session.execute(select(Partner.id, Partner.name))).all()
        owner = await session.scalar(select(Tip.partner_id).where(Tip.title == "LED-Hallenlicht"))
    assert (ihk, "ihk düsseldorf") in partners
    assert len(partners) == 3
    assert owner == ihk


async def test_the_database_refuses_partner_names_that_differ_only_in_case(db: Sessions) -> None:
    async with db() as session:
        session.add(Partner(name="Straße GmbH", joined=dt.date(2023, 1, 1)))
        await session.commit()

    async with db() as session:
        session.add(Partner(name="STRASSE GMBH", joined=dt.date(2023, 1, 1)))
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_a_key_lets_an_entry_move_and_be_renamed(db: Sessions) -> None:
    before = """\
partners:
  - {key: weiqiao, name: WEIQIAO Germany, joined: 2022-10-01}
meetings:
  - {key: treffen-2, title: 2. Netzwerktrefen, starts: 2023-03-29 14:00, location: IHK}
tips:
  - {key: druckluft, title: Druckluft, partner: WEIQIAO Germany, category: processes, text: a}
"""
    after = """\
partners:
  - {key: weiqiao, name: WEIQIAO Germany GmbH, joined: 2022-10-01}
meetings:
  - {key: treffen-2, title: 2. Netzwerktreffen, starts: 2023-04-05 15:00, location: IHK}
tips:
  - {key: druckluft, title: Druckluftleckagen beseitigt, partner: WEIQIAO Germany GmbH,
     category: processes, text: a}
"""
    await import_text(db, before)
    async with db() as session:
        ids_before = [
            (await session.scalars(select(model.id))).all() for model in (Partner, Meeting, Tip)
        ]

    summary = await import_text(db, after)

    assert summary == ImportSummary(Counts(updated=1), Counts(updated=1), Counts(updated=1))
    async with db() as session:
        ids_after = [
            (await session.scalars(select(model.id))).all() for model in (Partner, Meeting, Tip)
        ]
        moved = (
            await session.execute(select(Meeting.title, Meeting.starts_at, Meeting.sequence))
        ).one()
        renamed = (await session.execute(select(Tip.title, Partner.name).join(Partner))).one()
    assert ids_after == ids_before
    # Moved: calendar apps see a higher SEQUENCE and take the change over.
    assert tuple(moved) == (
        "2. Netzwerktreffen",
        dt.datetime(2023, 4, 5, 13, tzinfo=dt.UTC),
        1,
    )
    assert tuple(renamed) == ("Druckluftleckagen beseitigt", "WEIQIAO Germany GmbH")
    # Without its key the entry is found by its name and keeps the key it has.
    assert not (await import_text(db, after.replace("key: weiqiao, ", ""))).changed
    async with db() as session:
        assert await session.scalar(select(Meeting.sequence)) == 1


async def test_keys_that_contradict_what_is_stored_are_refused(
    db: Sessions, stored_rows: StoredRows
) -> None:
    await import_text(
        db,
        """\
meetings:
  - {key: fruehjahr, title: Treffen, starts: 2023-03-29 14:00, location: Rathaus}
  - {title: Sommerfest, starts: 2023-06-28 18:00, location: Rheinufer}
""",
    )
    before = await stored_rows(db)

    with pytest.raises(ImportFileError) as caught:
        await import_text(
            db,
            """\
meetings:
  - {key: herbst, title: Treffen, starts: 2023-03-29 14:00, location: Rathaus}
  - {key: fruehjahr, title: Sommerfest, starts: 2023-06-28 18:00, location: Rathaus}
""",
        )

    assert caught.value.problems == [
        Problem("meetings[1] (Treffen)", "key", "other_key", {"other": "fruehjahr"}),
        Problem("meetings[2] (Sommerfest)", "title", "taken", {"field": "title"}),
    ]
    assert await stored_rows(db) == before


async def test_cancelled_sets_and_clears_the_cancellation(db: Sessions) -> None:
    async def cancelled_at() -> dt.datetime | None:
        async with db() as session:
            return await session.scalar(select(Meeting.cancelled_at))

    await import_text(db, meeting(cancelled="true"))
    first = await cancelled_at()
    again = await import_text(db, meeting(cancelled="true"))
    kept = await cancelled_at()
    restored = await import_text(db, meeting())

    assert first is not None
    assert not again.changed
    assert kept == first
    assert restored.meetings == Counts(updated=1)
    assert await cancelled_at() is None


KEYED = """\
partners:
  - key: weiqiao
    name: WEIQIAO Germany GmbH
    joined: 2022-10-01

meetings:
  - key: treffen-2
    title: 2. Netzwerktreffen
    starts: 2023-03-29 14:00
    location: IHK Düsseldorf
    cancelled: true
  - title: 3. Netzwerktreffen
    starts: 2023-06-28 14:00
    location: Rathaus

tips:
  - key: druckluft
    title: Druckluftleckagen beseitigt
    partner: WEIQIAO Germany GmbH
    category: processes
    text: Vierzehn Leckagen im Druckluftnetz abgedichtet.
"""


async def test_keys_and_cancellations_survive_a_round_trip(make_database: MakeDatabase) -> None:
    first = await make_database()
    await import_text(first, KEYED)
    exported = await export_text(first)
    second = await make_database()

    await import_text(second, exported)

    assert exported == KEYED
    assert await export_text(second) == exported


async def test_stored_entries_are_checked_without_the_write_lock(tmp_path: Path) -> None:
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path}/k.db")
    sessions = session_factory(engine)
    await import_file(sessions, EXAMPLE, TZ)
    # Another process (a running bot) is in the middle of a write.
    writer = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        # Finding that the partner is not stored needs the database, but not its write lock;
        # waiting for the lock would end in "database is locked" after the busy timeout.
        with pytest.raises(ImportFileError) as caught:
            await import_file(sessions, tip(partner="Unbekannt AG"), TZ)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert [p.code for p in caught.value.problems] == ["unknown_partner"]
    await engine.dispose()


async def test_a_long_import_reports_its_progress(
    db: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writing, "CHUNK", 2)
    tips = "".join(
        f"  - {{title: Tipp {n}, partner: Acme, category: heat, text: a}}\n" for n in range(5)
    )
    reported: list[tuple[int, int]] = []

    summary = await import_file(
        db,
        "partners:\n  - {name: Acme, joined: 2022-10-01}\ntips:\n" + tips,
        TZ,
        lambda done, total: reported.append((done, total)),
    )

    assert summary.tips == Counts(created=5)
    assert reported == [(1, 6), (3, 6), (5, 6), (6, 6)]


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_an_existing_database_upgrades_to_import_keys(tmp_path: Path) -> None:
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    async with engine.begin() as connection:
        await connection.run_sync(_downgrade, "0004")
        # Older versions took "Acme" and "acme" for two partners.
        for number, name in enumerate(("Acme", "acme", "Straße GmbH"), start=1):
            await connection.execute(
                text(
                    "INSERT INTO partners (id, name, sector, joined, created_at) "
                    "VALUES (:id, :name, '', '2022-10-01', '2022-10-01 00:00:00')"
                ),
                {"id": number, "name": name},
            )
        await connection.execute(
            text(
                "INSERT INTO tips (partner_id, title, category, text, endorsement_count, "
                "created_at) VALUES (2, 'Tipp', 'heat', 'a', 0, '2022-10-01 00:00:00')"
            )
        )

    await upgrade(engine)

    async with engine.connect() as connection:
        partners = (
            await connection.execute(
                text("SELECT id, name, name_folded, import_key FROM partners ORDER BY id")
            )
        ).all()
        tips = (await connection.execute(text("SELECT partner_id, title FROM tips"))).all()
    assert [tuple(row) for row in partners] == [
        (1, "Acme", "acme", None),
        (2, "acme", "acme #2", None),
        (3, "Straße GmbH", "strasse gmbh", None),
    ]
    assert [tuple(row) for row in tips] == [(2, "Tipp")]
    summary = await import_file(session_factory(engine), partner(name="ACME"), TZ)
    assert summary.partners == Counts(updated=1)
    await engine.dispose()


PARSERS = [
    pytest.param(yaml.SafeLoader, id="python"),
    pytest.param(getattr(yaml, "CSafeLoader", yaml.SafeLoader), id="libyaml"),
]


@pytest.mark.parametrize("loader", PARSERS)
@pytest.mark.parametrize(
    ("yaml_text", "code"),
    [
        pytest.param(BILLION_LAUGHS, "too_many_aliases", id="billion-laughs"),
        pytest.param("partners: " + "[" * 100_000 + "]" * 100_000 + "\n", "too_deep", id="deep"),
        pytest.param("partners: []\npartners: []\n", "duplicate_key", id="key-twice"),
    ],
)
def test_either_parser_refuses_a_hostile_file(
    monkeypatch: pytest.MonkeyPatch, loader: type[yaml.SafeLoader], yaml_text: str, code: str
) -> None:
    monkeypatch.setattr(yamlfile, "_LOADER", loader)

    assert problems_in(yaml_text) == [("file", None, code)]


@pytest.mark.parametrize("loader", PARSERS)
def test_either_parser_reads_the_example_alike(
    monkeypatch: pytest.MonkeyPatch, loader: type[yaml.SafeLoader]
) -> None:
    expected = parse_import(EXAMPLE, TZ)
    monkeypatch.setattr(yamlfile, "_LOADER", loader)

    assert parse_import(EXAMPLE, TZ) == expected


async def test_a_write_between_checking_and_writing_is_noticed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path}/k.db")
    checked_against: list[int] = []
    plan_import = plan.plan_import

    def plan_while_another_process_writes(
        data: NetworkData, stored: plan.Stored, now: dt.datetime | None = None
    ) -> plan.ImportPlan:
        if not checked_against:
            other = sqlite3.connect(tmp_path / "k.db")
            other.execute(
                "INSERT INTO partners (name, name_folded, sector, joined, created_at) "
                "VALUES ('ACME', 'acme', '', '2022-10-01', '2022-10-01 00:00:00')"
            )
            other.commit()
            other.close()
        checked_against.append(len(stored["partners"]))
        return plan_import(data, stored, now)

    monkeypatch.setattr(writing, "plan_import", plan_while_another_process_writes)

    summary = await import_file(session_factory(engine), partner(name="Acme"), TZ)

    # The first plan would have added a second Acme; the import checked again instead.
    assert checked_against == [0, 1]
    assert summary.partners == Counts(updated=1)
    async with engine.connect() as connection:
        names = (await connection.execute(text("SELECT name FROM partners"))).scalars().all()
    assert names == ["Acme"]
    await engine.dispose()


async def test_entries_with_keys_may_trade_titles(db: Sessions) -> None:
    await import_text(
        db,
        """\
tips:
  - {key: a, title: Erster Tipp, partner: Acme, category: heat, text: a}
  - {key: b, title: Zweiter Tipp, partner: Acme, category: heat, text: b}
partners:
  - {name: Acme, joined: 2022-10-01}
""",
    )

    summary = await import_text(
        db,
        """\
tips:
  - {key: a, title: Zweiter Tipp, partner: Acme, category: heat, text: a}
  - {key: b, title: Erster Tipp, partner: Acme, category: heat, text: b}
""",
    )

    assert summary.tips == Counts(updated=2)
    async with db() as session:
        tips = (await session.execute(select(Tip.import_key, Tip.title).order_by(Tip.id))).all()
    assert [tuple(row) for row in tips] == [("a", "Zweiter Tipp"), ("b", "Erster Tipp")]


async def test_one_partner_named_by_its_stored_and_its_new_name_is_one_partner(
    db: Sessions, stored_rows: StoredRows
) -> None:
    await import_text(db, "partners:\n  - {key: w, name: WEIQIAO, joined: 2022-10-01}\n")
    before = await stored_rows(db)

    with pytest.raises(ImportFileError) as caught:
        await import_text(
            db,
            """\
partners:
  - {key: w, name: WEIQIAO Germany GmbH, joined: 2022-10-01}
tips:
  - {title: Druckluft, partner: WEIQIAO, category: processes, text: a}
  - {title: Druckluft, partner: WEIQIAO Germany GmbH, category: processes, text: b}
""",
        )

    assert caught.value.problems == [
        Problem("tips[2] (Druckluft)", "title", "duplicate", {"other": "tips[1] (Druckluft)"})
    ]
    assert await stored_rows(db) == before


async def test_data_built_in_code_is_checked_like_a_file(db: Sessions) -> None:
    joined = dt.date(2022, 10, 1)
    twice = NetworkData(
        partners=(PartnerData(name="Acme", joined=joined), PartnerData(name="ACME", joined=joined))
    )

    async with db() as session:
        with pytest.raises(ImportFileError) as caught:
            await import_data(session, twice)

    assert caught.value.problems == [
        Problem("partners[2] (ACME)", "name", "duplicate", {"other": "partners[1] (Acme)"})
    ]


SERIES = (DATA / "import-series.yaml").read_text(encoding="utf-8")
SERIES_EXPORT = """\
partners: []

meetings:
  - title: Werkstattbesuch bei WEIQIAO
    starts: 2027-02-10 10:00
    ends: 2027-02-10 12:00
    location: Werk Neuss
    capacity: 12

tips: []

series:
  - key: quartal
    title: Quartalstreffen
    starts: 2027-01-13 14:00
    ends: 2027-01-13 17:00
    rule: FREQ=MONTHLY;INTERVAL=3;BYDAY=+2WE
    location: IHK Düsseldorf
    online_url: https://example.org/quartal
    agenda: Erfahrungsaustausch zu CO2-Einsparungen
    capacity: 40
    exceptions:
      - occurrence: 2027-04-14 14:00
        starts: 2027-04-15 15:00
        location: Rathaus Düsseldorf
      - occurrence: 2027-07-14 14:00
        cancelled: true
"""


async def _occurrences(sessions: Sessions) -> list[tuple[str, str, bool, int | None]]:
    async with sessions() as session:
        made = await session.scalars(
            select(Meeting).where(Meeting.series_id.is_not(None)).order_by(Meeting.starts_at)
        )
        return [
            (
                m.starts_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M"),
                m.location or "",
                m.cancelled_at is not None,
                m.capacity,
            )
            for m in made
        ]


async def test_series_and_capacity_round_trip_exactly(make_database: MakeDatabase) -> None:
    first = await make_database()
    summary = await import_text(first, SERIES, NOW)
    exported = await export_text(first)
    second = await make_database()

    await import_text(second, exported, NOW)

    assert summary.series == Counts(created=1)
    assert exported == SERIES_EXPORT
    assert await export_text(second) == exported
    assert await _occurrences(second) == await _occurrences(first)


async def test_a_series_becomes_meetings_with_its_exceptions(db: Sessions) -> None:
    await import_text(db, SERIES, NOW)

    assert await _occurrences(db) == [
        ("2027-01-13 14:00", "IHK Düsseldorf", False, 40),
        ("2027-04-15 15:00", "Rathaus Düsseldorf", False, 40),
        ("2027-07-14 14:00", "IHK Düsseldorf", True, 40),
        ("2027-10-13 14:00", "IHK Düsseldorf", False, 40),
    ]
    # Only the meeting outside the series is a meeting entry of its own.
    assert "meetings:\n  - title: Werkstattbesuch bei WEIQIAO\n" in await export_text(db)


async def test_importing_a_series_again_changes_nothing(
    db: Sessions, stored_rows: StoredRows
) -> None:
    await import_text(db, SERIES, NOW)
    before = await stored_rows(db)

    summary = await import_text(db, await export_text(db), NOW)

    assert not summary.changed
    assert await stored_rows(db) == before


async def test_an_occurrence_changed_in_chat_is_exported_as_an_exception(
    make_database: MakeDatabase,
) -> None:
    first = await make_database()
    await import_text(first, SERIES, NOW)
    async with first() as session:
        october = (
            await session.scalars(
                select(Meeting).where(Meeting.title == "Quartalstreffen").order_by(Meeting.id)
            )
        ).all()[3]
        october.starts_at += dt.timedelta(days=1)
        october.ends_at = october.starts_at + dt.timedelta(hours=2)
        await session.commit()

    exported = await export_text(first)
    second = await make_database()
    await import_text(second, exported, NOW)

    assert (
        "      - occurrence: 2027-10-13 14:00\n"
        "        starts: 2027-10-14 14:00\n"
        "        ends: 2027-10-14 16:00\n"
    ) in exported
    assert await _occurrences(second) == await _occurrences(first)
    assert await export_text(second) == exported


async def test_a_changed_rule_drops_occurrences_it_no_longer_gives(db: Sessions) -> None:
    await import_text(db, SERIES, NOW)

    await import_text(
        db,
        SERIES.replace("interval=3;byday=+2WE", "interval=6;byday=+2WE").replace(
            "      - occurrence: 2027-04-14 14:00\n"
            "        starts: 2027-04-15 15:00\n"
            "        location: Rathaus Düsseldorf\n",
            "",
        ),
        NOW,
    )

    assert await _occurrences(db) == [
        ("2027-01-13 14:00", "IHK Düsseldorf", False, 40),
        ("2027-07-14 14:00", "IHK Düsseldorf", True, 40),
    ]


async def test_a_meeting_entry_cannot_take_the_place_of_an_occurrence(db: Sessions) -> None:
    await import_text(db, SERIES, NOW)
    before = await export_text(db)

    with pytest.raises(ImportFileError) as caught:
        await import_text(db, meeting(title="Quartalstreffen", starts="2027-10-13 14:00"), NOW)

    assert [(p.entry, p.field, p.code) for p in caught.value.problems] == [
        ("meetings[1] (Quartalstreffen)", "title", "taken")
    ]
    assert await export_text(db) == before


async def test_only_what_calendar_apps_show_raises_a_meetings_sequence(db: Sessions) -> None:
    meeting = "meetings:\n  - {title: Stammtisch, starts: 2027-03-29 18:00, location: %s%s}\n"
    await import_text(db, meeting % ("IHK", ""))
    sequences = []
    for place, more in (
        (
            "IHK",
            ", agenda: LED",
        ),
        ("IHK", ", agenda: LED, capacity: 20"),
    ):
        await import_text(db, meeting % (place, more))
        async with db() as session:
            sequences.append(await session.scalar(select(Meeting.sequence)))
    await import_text(db, meeting % ("Rathaus", ", agenda: LED, capacity: 20"))
    await import_text(db, meeting % ("Rathaus", ", agenda: LED, capacity: 20, cancelled: true"))
    async with db() as session:
        sequences.append(await session.scalar(select(Meeting.sequence)))
    assert sequences == [0, 0, 2]
