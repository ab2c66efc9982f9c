"""Writing an import: check it without the write lock, then write it in bulk."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.attendance import fill_every_place
from storage.db import READ_ONLY, dialect_name
from storage.exchange.entries import NetworkData, parse_import
from storage.exchange.plan import KINDS, ImportPlan, ImportSummary, plan_import, read_stored
from storage.models import Meeting, MeetingSeries, Partner, utcnow
from storage.series import sync_series

# Rows per statement, and how often a long import reports its progress.
CHUNK = 5000
# Checks made without the write lock are repeated under it when another process wrote in
# between; after this many tries the checks run under the lock.
OPTIMISTIC_TRIES = 2

Progress = Callable[[int, int], None]


def _chunks(rows: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


async def write_plan(
    session: AsyncSession, plan: ImportPlan, progress: Progress | None = None
) -> ImportSummary:
    """Make the planned writes, in bulk; the caller commits (or rolls back)."""
    total, done = plan.size, 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    new_partners: dict[str, int] = {}
    for kind in KINDS:
        changes = plan.changes[kind.section]
        for values in changes.inserts + changes.updates:
            if isinstance(values.get("partner_id"), tuple):
                values["partner_id"] = new_partners[values["partner_id"][1]]
        for rows in _chunks(changes.inserts):
            if kind.model is Partner:
                statement = insert(Partner).returning(Partner.id, Partner.name_folded)
                added = await session.execute(statement, rows)
                new_partners.update({folded: row_id for row_id, folded in added})
            else:
                await session.execute(insert(kind.model), rows)
            advance(len(rows))
        # Entries may trade names or titles: each renamed one first steps aside, under a
        # name no file can give (control characters are refused).
        for ids in _chunks(changes.renamed):
            parked = [{"id": i} | dict.fromkeys(kind.parked, f"\x00{i}") for i in ids]
            await session.execute(update(kind.model), parked)
        for rows in _chunks(changes.updates):
            await session.execute(update(kind.model), rows)
            advance(len(rows))
        # Bulk updates pass the ORM's flush, which raises the sequence of a changed meeting.
        for ids in _chunks(changes.revised):
            await session.execute(
                update(Meeting).where(Meeting.id.in_(ids)).values(sequence=Meeting.sequence + 1)
            )
    return plan.summary()


# An exception's fields as the file names them, by the meeting columns they set.
EXCEPTION_FIELDS = {
    "starts": "starts_at",
    "ends": "ends_at",
    "title": "title",
    "location": "location",
    "online_url": "online_url",
    "agenda": "agenda",
    "capacity": "capacity",
    "cancelled": "cancelled",
}


async def write_occurrences(session: AsyncSession, data: NetworkData, now: dt.datetime) -> None:
    """Make each series' occurrences, with its exceptions; give places freed by capacities."""
    for entry in data.series:
        where = (
            MeetingSeries.import_key == entry.key
            if entry.key
            else (MeetingSeries.title == entry.title) & (MeetingSeries.starts_at == entry.starts)
        )
        series = (await session.scalars(select(MeetingSeries).where(where))).one()
        exceptions = {
            exception.occurrence: {
                column: getattr(exception, name)
                for name, column in EXCEPTION_FIELDS.items()
                if getattr(exception, name) not in (None, False)
            }
            for exception in entry.exceptions
        }
        await sync_series(session, series, exceptions, now, data.timezone)
    await fill_every_place(session, now)


async def write_import(
    session: AsyncSession,
    plan: ImportPlan,
    data: NetworkData,
    progress: Progress | None,
    now: dt.datetime,
) -> ImportSummary:
    """Make the planned writes, then the series' occurrences; the caller commits."""
    summary = await write_plan(session, plan, progress)
    await write_occurrences(session, data, now)
    return summary


async def import_data(
    session: AsyncSession,
    data: NetworkData,
    progress: Progress | None = None,
    *,
    now: dt.datetime | None = None,
) -> ImportSummary:
    """Create or update the entries by their keys; the caller commits (or rolls back).

    ``now`` decides how far ahead series are made into meetings (and cancellation times).
    """
    now = now or utcnow()
    plan = plan_import(data, await read_stored(session), now)
    return await write_import(session, plan, data, progress, now)


async def _data_version(session: AsyncSession) -> tuple[int, int]:
    # SQLite's count of commits by other connections, with the connection that counts them.
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    version = await session.scalar(text("PRAGMA data_version"))
    return id(raw.driver_connection), int(version or 0)


async def import_file(
    sessions: async_sessionmaker[AsyncSession],
    yaml_text: str,
    timezone: dt.tzinfo,
    progress: Progress | None = None,
    *,
    now: dt.datetime | None = None,
) -> ImportSummary:
    """Import a file all or nothing, holding the write lock only while writing."""
    now = now or utcnow()
    data = parse_import(yaml_text, timezone)
    for _try in range(OPTIMISTIC_TRIES):
        # Reading takes a snapshot, not the lock: the bot beside it goes on writing.
        async with sessions() as session:
            if dialect_name(session) != "sqlite":
                break  # other databases lock rows, not the whole file
            await session.connection(execution_options={READ_ONLY: True})
            seen = await _data_version(session)
            stored = await read_stored(session)
        plan = plan_import(data, stored, now)
        async with sessions() as session, session.begin():
            if await _data_version(session) == seen:
                return await write_import(session, plan, data, progress, now)
    async with sessions() as session, session.begin():
        return await import_data(session, data, progress, now=now)
