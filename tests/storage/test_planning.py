"""Planning storage: create, change and cancel meetings; notices and reminders follow; dialogs."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.attendance import answer as give_answer
from storage.dialogs import (
    DONE,
    dialog_data,
    dialog_of,
    drop_dialog,
    drop_expired_dialogs,
    save_dialog,
    waiting_dialog,
)
from storage.members import member_for, subscribe
from storage.models import (
    Answer,
    Delivery,
    DeliveryState,
    Meeting,
    MeetingNotice,
    Member,
    NoticeKind,
    Topic,
)
from storage.planning import (
    DuplicateMeeting,
    MeetingDraft,
    apply_changes,
    cancel_meeting,
    create_meeting,
)
from storage.reminders import ReminderRules, plan_reminders
from tests.storage.test_reminders import BERLIN, LONG_AGO, berlin

NOW = dt.datetime(2027, 3, 1, 9, 0, tzinfo=dt.UTC)
START = berlin(2027, 3, 29, 14, 0)
HORIZON = dt.timedelta(minutes=5)
DRAFT = MeetingDraft(
    "3. Netzwerktreffen", START, START + dt.timedelta(hours=3), location="IHK Düsseldorf"
)


async def person(session: AsyncSession, user: str) -> Member:
    found, _, _ = await member_for(session, "telegram", user, private_chat=user, now=LONG_AGO)
    return found


async def answered(session: AsyncSession, meeting: Meeting) -> dict[Answer | None, int]:
    """Store four members: one answered yes, one maybe, one no, one not at all."""
    members: dict[Answer | None, int] = {}
    for answer in (Answer.YES, Answer.MAYBE, Answer.NO, None):
        member = await person(session, str(answer))
        if answer is not None:
            await give_answer(session, meeting, member.id, answer, NOW)
        members[answer] = member.id
    return members


async def notices(session: AsyncSession) -> list[tuple[NoticeKind, dict[str, object], int]]:
    """Return each notice with its changes and the member each delivery row is for."""
    rows = await session.execute(
        select(MeetingNotice.kind, MeetingNotice.changes, Delivery.member_id)
        .join(Delivery, Delivery.notice_id == MeetingNotice.id)
        .order_by(MeetingNotice.id, Delivery.member_id)
    )
    return [(NoticeKind(kind), json.loads(changes), member) for kind, changes, member in rows]


async def test_a_new_meeting_is_stored_as_described_with_a_fresh_uid(
    session: AsyncSession,
) -> None:
    meeting = await create_meeting(session, DRAFT, NOW)
    other = await create_meeting(session, MeetingDraft("4. Netzwerktreffen", START), NOW)
    await session.commit()
    stored = await session.get(Meeting, meeting.id)
    assert stored is not None
    assert (stored.title, stored.starts_at, stored.ends_at, stored.location) == (
        "3. Netzwerktreffen",
        START,
        START + dt.timedelta(hours=3),
        "IHK Düsseldorf",
    )
    assert (stored.sequence, stored.created_at, stored.cancelled_at) == (0, NOW, None)
    assert stored.uid.endswith("@klimabot")
    assert stored.uid != other.uid


async def test_a_second_meeting_with_the_same_title_and_start_is_refused(
    session: AsyncSession,
) -> None:
    first = await create_meeting(session, DRAFT, NOW)
    with pytest.raises(DuplicateMeeting) as refused:
        await create_meeting(session, DRAFT, NOW)
    assert refused.value.meeting_id == first.id
    assert len(list(await session.scalars(select(Meeting.id)))) == 1


async def test_a_move_raises_the_sequence_and_tells_yes_and_maybe_only(
    session: AsyncSession,
) -> None:
    meeting = await create_meeting(session, DRAFT, NOW)
    members = await answered(session, meeting)
    later = START + dt.timedelta(days=1, hours=1)
    changed = await apply_changes(
        session, meeting, {"starts_at": later, "ends_at": later + dt.timedelta(hours=2)}, NOW
    )
    await session.commit()
    assert changed == {
        "starts_at": (START.isoformat(), later.isoformat()),
        "ends_at": (
            (START + dt.timedelta(hours=3)).isoformat(),
            (later + dt.timedelta(hours=2)).isoformat(),
        ),
    }
    assert meeting.sequence == 1
    told = await notices(session)
    assert told == [
        (NoticeKind.CHANGED, {k: list(v) for k, v in changed.items()}, members[Answer.YES]),
        (NoticeKind.CHANGED, {k: list(v) for k, v in changed.items()}, members[Answer.MAYBE]),
    ]


async def test_an_agenda_change_tells_attendees_but_calendars_need_no_new_sequence(
    session: AsyncSession,
) -> None:
    meeting = await create_meeting(session, DRAFT, NOW)
    await answered(session, meeting)
    await apply_changes(session, meeting, {"agenda": "Wärmepumpen"}, NOW)
    assert meeting.sequence == 0
    assert [kind for kind, _changes, _member in await notices(session)] == [NoticeKind.CHANGED] * 2


async def test_a_change_to_the_same_values_stores_no_notice(session: AsyncSession) -> None:
    meeting = await create_meeting(session, DRAFT, NOW)
    await answered(session, meeting)
    assert await apply_changes(session, meeting, {"location": "IHK Düsseldorf"}, NOW) == {}
    assert (meeting.sequence, await notices(session)) == (0, [])


async def test_a_change_onto_another_meetings_title_and_start_is_refused(
    session: AsyncSession,
) -> None:
    first = await create_meeting(session, DRAFT, NOW)
    second = await create_meeting(session, MeetingDraft("Anderes Treffen", START), NOW)
    with pytest.raises(DuplicateMeeting):
        await apply_changes(session, second, {"title": "3. Netzwerktreffen"}, NOW)
    assert (second.title, second.sequence, first.sequence) == ("Anderes Treffen", 0, 0)


async def test_cancelling_tells_attendees_and_removes_pending_reminders(
    session: AsyncSession,
) -> None:
    meeting = await create_meeting(session, DRAFT, LONG_AGO)
    members = await answered(session, meeting)
    await subscribe(session, members[None], [Topic.REMINDERS])
    rules = ReminderRules((1440,), dt.timedelta(hours=6), BERLIN)
    await plan_reminders(session, START - dt.timedelta(days=1, minutes=1), HORIZON, rules)
    assert await reminder_rows(session) == [(members[None], START)]
    assert await cancel_meeting(session, meeting, NOW) == 2
    await session.commit()
    assert (meeting.cancelled_at, meeting.sequence) == (NOW, 1)
    assert await reminder_rows(session) == []
    assert await notices(session) == [
        (NoticeKind.CANCELLED, {}, members[Answer.YES]),
        (NoticeKind.CANCELLED, {}, members[Answer.MAYBE]),
    ]


async def reminder_rows(session: AsyncSession) -> list[tuple[int, dt.datetime | None]]:
    rows = await session.execute(
        select(Delivery.member_id, Delivery.planned_start).where(
            Delivery.offset_minutes.is_not(None), Delivery.state == DeliveryState.PENDING
        )
    )
    return [(member, planned) for member, planned in rows]


async def test_pending_reminders_follow_a_moved_meeting(session: AsyncSession) -> None:
    meeting = await create_meeting(session, DRAFT, LONG_AGO)
    member = await person(session, "anna")
    await subscribe(session, member.id, [Topic.REMINDERS])
    rules = ReminderRules((1440,), dt.timedelta(hours=6), BERLIN)
    planning_time = START - dt.timedelta(days=1, minutes=1)
    await plan_reminders(session, planning_time, HORIZON, rules)
    assert await reminder_rows(session) == [(member.id, START)]
    later = START + dt.timedelta(hours=2)
    await apply_changes(session, meeting, {"starts_at": later}, planning_time)
    await plan_reminders(session, planning_time, HORIZON, rules)
    assert await reminder_rows(session) == []  # the old one went; the new one is not due yet
    await plan_reminders(session, later - dt.timedelta(days=1, minutes=1), HORIZON, rules)
    [(who, planned)] = await reminder_rows(session)
    assert (who, planned) == (member.id, later)
    due = await session.scalar(select(Delivery.due_at).where(Delivery.planned_start == later))
    assert due == later - dt.timedelta(days=1)


async def test_a_dialog_is_one_row_per_member_that_runs_out(session: AsyncSession) -> None:
    member = await person(session, "koordination")
    expires = NOW + dt.timedelta(minutes=30)
    await save_dialog(session, member.id, "newmeeting", "title", {}, expires_at=expires, now=NOW)
    await save_dialog(
        session,
        member.id,
        "newmeeting",
        "starts_at",
        {"title": "Treffen „Wärme“"},
        expires_at=expires,
        now=NOW,
    )
    await session.commit()
    dialog = await dialog_of(session, member.id)
    assert dialog is not None
    assert (dialog.kind, dialog.step, dialog.expires_at) == ("newmeeting", "starts_at", expires)
    assert dialog_data(dialog) == {"title": "Treffen „Wärme“"}
    assert await waiting_dialog(session, member.id)
    await save_dialog(session, member.id, "newmeeting", DONE, {}, expires_at=expires, now=NOW)
    assert not await waiting_dialog(session, member.id)
    assert await drop_expired_dialogs(session, expires - dt.timedelta(seconds=1)) == 0
    assert await drop_expired_dialogs(session, expires) == 1
    assert await dialog_of(session, member.id) is None
    await save_dialog(session, member.id, "editmeeting", "field", {}, expires_at=expires, now=NOW)
    await drop_dialog(session, member.id)
    assert await dialog_of(session, member.id) is None
