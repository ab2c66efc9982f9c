"""Change tracking: which tables a unit of work wrote, and other processes' writes."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.changes import Changes
from storage.models import Identity, Meeting, Member, Partner
from tests.helpers import NOW, Sessions, add_meeting, add_partner, add_tip


async def test_an_insert_changes_its_table_and_no_other(
    sessions: Sessions, changes: Changes
) -> None:
    meetings, tips = changes.stamp(["meetings"]), changes.stamp(["tips"])
    async with sessions() as session:
        await add_meeting(session, "Klimapakt-Treffen", NOW)
        await session.commit()
    assert changes.stamp(["meetings"]) != meetings
    assert changes.stamp(["tips"]) == tips


async def test_a_bulk_update_changes_its_table(sessions: Sessions, changes: Changes) -> None:
    identities, meetings = changes.stamp(["identities"]), changes.stamp(["meetings"])
    async with sessions() as session:
        await session.execute(update(Identity).values(unreachable_since=NOW))
        await session.commit()
    assert changes.stamp(["identities"]) != identities
    assert changes.stamp(["meetings"]) == meetings


async def test_new_rows_leave_the_rows_already_there_as_they_were(
    sessions: Sessions, changes: Changes
) -> None:
    known = changes.stamp(["members"], new_rows=False)
    async with sessions() as session:
        session.add(Member(display_name="Neu"))
        await session.commit()
    assert changes.stamp(["members"], new_rows=False) == known
    async with sessions() as session:
        await session.execute(update(Member).values(language="en"))
        await session.commit()
    assert changes.stamp(["members"], new_rows=False) != known


async def test_an_insert_that_updates_on_conflict_changes_rows_already_there(
    sessions: Sessions, changes: Changes
) -> None:
    async with sessions() as session:
        session.add(Member(id=7, display_name="Alt"))
        await session.commit()
    known = changes.stamp(["members"], new_rows=False)
    upsert = sqlite_insert(Member).values(id=7, display_name="Neu")
    async with sessions() as session:
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[Member.id], set_={"display_name": upsert.excluded.display_name}
            )
        )
        await session.commit()
    assert changes.stamp(["members"], new_rows=False) != known


async def test_a_delete_changes_every_table(sessions: Sessions, changes: Changes) -> None:
    # Deleting a partner cascades to its tips and clears its members' partner.
    async with sessions() as session:
        partner = await add_partner(session)
        await add_tip(session, partner, "LED-Hallenbeleuchtung")
        await session.commit()
    tables = ["tips", "members", "rsvps"]
    before = {table: changes.stamp([table]) for table in tables}
    async with sessions() as session:
        await session.execute(delete(Partner))
        await session.commit()
    assert all(changes.stamp([table]) != before[table] for table in tables)


async def test_a_write_counts_again_when_it_commits(sessions: Sessions, changes: Changes) -> None:
    # A reader that takes its stamp while the write is in flight must see it go stale.
    async with sessions() as session:
        await add_meeting(session, "Klimapakt-Treffen", NOW)
        in_flight = changes.stamp(["meetings"])
        await session.commit()
    assert changes.stamp(["meetings"]) != in_flight


async def test_reads_change_nothing(sessions: Sessions, changes: Changes) -> None:
    async with sessions() as session:
        await add_meeting(session, "Klimapakt-Treffen", NOW)
        await session.commit()
    before = changes.stamp(["members", "meetings", "rsvps", "tips"])
    async with sessions() as session:
        await session.get(Member, 1)
        assert len((await session.execute(select(Meeting))).all()) == 1
        await session.commit()
    assert changes.stamp(["members", "meetings", "rsvps", "tips"]) == before


async def until_changed(changes: Changes, stamp: tuple[int, ...], tables: list[str]) -> bool:
    for _ in range(100):
        if changes.stamp(tables) != stamp:
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.usefixtures("watched")
async def test_another_process_writing_changes_everything(
    changes: Changes, other_process: Sessions
) -> None:
    stamp = changes.stamp(["meetings", "tips"])
    async with other_process() as session:
        await add_meeting(session, "Importiertes Treffen", NOW)
        await session.commit()
    assert await until_changed(changes, stamp, ["meetings", "tips"])


@pytest.mark.usefixtures("watched")
async def test_own_writes_are_not_taken_for_another_process(
    sessions: Sessions, changes: Changes
) -> None:
    tips = changes.stamp(["tips"])
    async with sessions() as session:
        await add_meeting(session, "Klimapakt-Treffen", NOW)
        await session.commit()
    assert not await until_changed(changes, tips, ["tips"])
