"""Tests for the demo network, on a real SQLite database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.demo import demo_data, load_demo
from storage.exchange import export_data, import_data, parse_import
from storage.models import Category, Meeting, Partner, Tip

# The fixtures of tests/storage/conftest.py.
Sessions = async_sessionmaker[AsyncSession]
MakeDatabase = Callable[[], Awaitable[Sessions]]
StoredRows = Callable[[Sessions], Awaitable[dict[str, list[tuple[object, ...]]]]]

TZ = ZoneInfo("Europe/Berlin")
# A Wednesday.
TODAY = dt.date(2026, 11, 25)


async def load(sessions: Sessions, today: dt.date = TODAY) -> bool:
    """Load the demo as `klimabot chat` does, and commit."""
    async with sessions() as session:
        loaded = await load_demo(session, today, TZ)
        await session.commit()
    return loaded


async def test_the_demo_loads_into_an_empty_database_once(
    db: Sessions, stored_rows: StoredRows
) -> None:
    assert await load(db) is True
    first = await stored_rows(db)

    assert await load(db) is False

    assert await stored_rows(db) == first
    assert len(first["partners"]) >= 10
    assert len(first["meetings"]) >= 5
    assert len(first["tips"]) >= 12


async def test_the_demo_is_not_loaded_beside_other_partners(db: Sessions) -> None:
    async with db() as session:
        session.add(Partner(name="Acme GmbH", joined=dt.date(2023, 1, 1)))
        await session.commit()

    assert await load(db) is False

    async with db() as session:
        assert (await session.scalars(select(Partner.name))).all() == ["Acme GmbH"]
        assert await session.scalar(select(func.count()).select_from(Meeting)) == 0


@pytest.mark.parametrize(
    "today",
    [TODAY, dt.date(2026, 11, 28), dt.date(2027, 3, 7), dt.date(2023, 1, 13)],
    ids=["wednesday", "saturday", "sunday-before-summer-time", "press-release-day"],
)
async def test_the_demo_has_meetings_ahead_of_today(db: Sessions, today: dt.date) -> None:
    await load(db, today)

    end_of_today = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), TZ)
    async with db() as session:
        upcoming = (
            await session.scalars(
                select(Meeting)
                .where(Meeting.starts_at >= end_of_today)
                .order_by(Meeting.starts_at)
            )
        ).all()
    assert len(upcoming) >= 3
    # Network meetings happen on working days, in working hours.
    for meeting in upcoming:
        local = meeting.starts_at.astimezone(TZ)
        assert local.weekday() < 5
        assert 8 <= local.hour <= 18
        assert meeting.ends_at is not None
        assert meeting.ends_at > meeting.starts_at
    online_only = [m for m in upcoming if m.location is None]
    assert online_only
    assert all(m.online_url and m.online_url.startswith("https://") for m in online_only)


async def test_the_demo_is_the_duesseldorf_climate_pact(db: Sessions) -> None:
    await load(db)

    async with db() as session:
        partners = {p.name: p for p in await session.scalars(select(Partner))}
        past = (
            await session.execute(
                select(Meeting.title, Meeting.starts_at, Meeting.location)
                .where(Meeting.starts_at < dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
                .order_by(Meeting.starts_at)
            )
        ).all()
        tips = (await session.execute(select(Tip, Partner.name).join(Partner))).all()
        heat_pumps = await session.scalar(
            text("SELECT count(*) FROM tips_search WHERE tips_search MATCH 'warmepump*'")
        )

    initial = [
        "Landeshauptstadt Düsseldorf",
        "IHK Düsseldorf",
        "Handwerkskammer Düsseldorf",
        "Kreishandwerkerschaft Düsseldorf",
    ]
    assert all(partners[name].joined < dt.date(2022, 10, 1) for name in initial)
    weiqiao = partners["WEIQIAO Germany GmbH"]
    assert (weiqiao.joined, weiqiao.sector) == (dt.date(2022, 10, 1), "Textil und Aluminium")
    assert weiqiao.description is not None
    assert "Shandong Weiqiao Pioneering Group" in weiqiao.description
    # Fictional companies point at example.org, never at someone's real site.
    assert all(
        p.website is None or p.website.startswith("https://example.org/")
        for p in partners.values()
    )
    assert [tuple(row) for row in past] == [
        (
            "1. Netzwerktreffen",
            dt.datetime(2022, 12, 6, 13, 0, tzinfo=dt.UTC),
            "Rathaus Düsseldorf, Marktplatz 2",
        ),
        (
            "2. Netzwerktreffen",
            dt.datetime(2023, 3, 29, 12, 0, tzinfo=dt.UTC),
            "IHK Düsseldorf, Ernst-Schneider-Platz 1",
        ),
    ]
    assert len(tips) >= 12
    assert {t.category for t, _name in tips} >= set(Category) - {Category.OTHER}
    assert len({name for _tip, name in tips}) >= 8
    assert all(t.co2_t_per_year is not None and t.co2_t_per_year > 0 for t, _name in tips)
    assert ("WEIQIAO Germany GmbH", "Druckluftleckagen beseitigt") in {
        (name, t.title) for t, name in tips
    }
    assert heat_pumps is not None
    assert heat_pumps >= 2


async def test_the_demo_passes_the_import_checks_and_round_trips(
    make_database: MakeDatabase,
) -> None:
    first = await make_database()
    await load(first)
    async with first() as session:
        exported = await export_data(session, TZ)
    second = await make_database()

    # Checking the export proves the demo keeps every rule an import file must keep.
    data = parse_import(exported, TZ)
    async with second() as session:
        await import_data(session, data)
        await session.commit()
        exported_again = await export_data(session, TZ)

    demo = demo_data(TODAY, TZ)
    assert set(data.partners) == set(demo.partners)
    assert set(data.meetings) == set(demo.meetings)
    assert set(data.tips) == set(demo.tips)
    assert exported_again == exported
