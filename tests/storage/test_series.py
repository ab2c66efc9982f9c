"""Meetings that repeat: occurrences by the rule in local time, exceptions that stay."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import WriteNeeded
from storage.models import Meeting, MeetingSeries
from storage.series import HORIZON, RuleError, extend_series, occurrences, recurrence
from tests.helpers import NOW, Sessions

TZ = ZoneInfo("Europe/Berlin")


def _local(wall_clock: str) -> dt.datetime:
    return dt.datetime.fromisoformat(wall_clock).replace(tzinfo=TZ).astimezone(dt.UTC)


async def _series(
    session: AsyncSession, rule: str, starts: str, *, hours: int = 3
) -> MeetingSeries:
    first = _local(starts)
    series = MeetingSeries(
        title="Quartalstreffen",
        starts_at=first,
        ends_at=first + dt.timedelta(hours=hours),
        rule=rule,
        location="IHK Düsseldorf",
    )
    session.add(series)
    await session.flush()
    return series


def _wall_clocks(meetings: list[Meeting]) -> list[str]:
    return [m.starts_at.astimezone(TZ).strftime("%Y-%m-%d %H:%M") for m in meetings]


async def test_a_series_across_both_clock_changes_stays_at_14_local(session: AsyncSession) -> None:
    # The last Sunday of the month: 28 March and 31 October 2027 are the days the clocks change.
    series = await _series(session, "FREQ=MONTHLY;BYDAY=-1SU;COUNT=11", "2027-01-31 14:00")

    await extend_series(session, NOW, TZ)

    made = await occurrences(session, series.id)
    assert _wall_clocks(made)[2] == "2027-03-28 14:00"
    assert _wall_clocks(made)[9] == "2027-10-31 14:00"
    assert {clock[-5:] for clock in _wall_clocks(made)} == {"14:00"}
    in_utc = [m.starts_at.hour for m in made]
    assert in_utc[1:3] == [13, 12]  # CET, then CEST on the day the clocks go forward
    assert in_utc[9] == 13  # CET again on the day they go back
    # The end keeps the length: 17:00 local, also on the days the clocks change.
    assert {m.ends_at.astimezone(TZ).hour for m in made if m.ends_at} == {17}


async def test_every_second_wednesday_of_the_quarter(session: AsyncSession) -> None:
    series = await _series(session, "FREQ=MONTHLY;INTERVAL=3;BYDAY=+2WE", "2027-01-13 14:00")

    await extend_series(session, NOW, TZ)

    assert _wall_clocks(await occurrences(session, series.id)) == [
        "2027-01-13 14:00",
        "2027-04-14 14:00",
        "2027-07-14 14:00",
        "2027-10-13 14:00",
    ]


async def test_a_moved_and_a_cancelled_occurrence_survive_as_time_passes(
    sessions: Sessions,
) -> None:
    async with sessions() as session:
        series = await _series(session, "FREQ=MONTHLY;INTERVAL=3;BYDAY=+2WE", "2027-01-13 14:00")
        await extend_series(session, NOW, TZ)
        april, july = (await occurrences(session, series.id))[1:3]
        # As /editmeeting and /cancelmeeting do it: the occurrence's own row changes.
        april.starts_at = _local("2027-04-15 15:00")
        april.ends_at = _local("2027-04-15 18:00")
        july.cancelled_at = NOW
        await session.commit()
        series_id = series.id

    # Half a year later the horizon has moved on: new occurrences are made, none again.
    later = NOW + dt.timedelta(days=200)
    async with sessions() as session:
        added = await extend_series(session, later, TZ)
        await session.commit()
    async with sessions() as session:
        made = await occurrences(session, series_id)

    assert added == 2
    assert _wall_clocks(made) == [
        "2027-01-13 14:00",
        "2027-04-15 15:00",
        "2027-07-14 14:00",
        "2027-10-13 14:00",
        "2028-01-12 14:00",
        "2028-04-12 14:00",
    ]
    assert [m.cancelled_at is not None for m in made] == [False, False, True, False, False, False]
    assert made[1].recurrence_id == _local("2027-04-14 14:00")
    assert max(m.starts_at for m in made) <= later + HORIZON + dt.timedelta(days=7)


async def test_looking_for_work_writes_nothing_when_there_is_none(
    sessions: Sessions, readers: Sessions
) -> None:
    async with sessions() as session:
        await _series(session, "FREQ=WEEKLY;BYDAY=WE", "2027-01-13 14:00")
        await extend_series(session, NOW, TZ)
        await session.commit()
    count = len(await _all_meetings(sessions))

    # A unit that only reads may ask (it would fail with WriteNeeded if it wrote).
    async with readers() as session:
        assert await extend_series(session, NOW + dt.timedelta(days=1), TZ) == 0

    assert len(await _all_meetings(sessions)) == count


async def test_a_reader_unit_is_told_to_write_when_occurrences_are_due(
    sessions: Sessions, readers: Sessions
) -> None:
    # As the reminder planner's rounds do: look as a reader, write as a writer when needed.
    async with sessions() as session:
        await _series(session, "FREQ=WEEKLY;BYDAY=WE", "2027-01-13 14:00")
        await extend_series(session, NOW, TZ)
        await session.commit()
    later = NOW + dt.timedelta(days=30)

    with pytest.raises(WriteNeeded):
        async with readers() as session:
            await extend_series(session, later, TZ)
    async with sessions() as session:
        assert await extend_series(session, later, TZ) > 0
        await session.commit()


async def _all_meetings(sessions: Sessions) -> list[Meeting]:
    async with sessions() as session:
        return list(await session.scalars(select(Meeting)))


async def test_an_until_in_utc_ends_the_series(session: AsyncSession) -> None:
    series = await _series(session, "FREQ=WEEKLY;UNTIL=20270127T130000Z", "2027-01-13 14:00")

    await extend_series(session, NOW, TZ)

    assert _wall_clocks(await occurrences(session, series.id)) == [
        "2027-01-13 14:00",
        "2027-01-20 14:00",
        "2027-01-27 14:00",
    ]


@pytest.mark.parametrize(
    "rule",
    ["FREQ=HOURLY", "FREQ=WEEKLY;BYDAY=XX", "BYDAY=MO", "", "DTSTART:20270101\nRRULE:FREQ=DAILY"],
)
def test_a_rule_the_bot_cannot_use_is_refused(rule: str) -> None:
    with pytest.raises(RuleError):
        recurrence(rule, _local("2027-01-13 14:00"), TZ)
