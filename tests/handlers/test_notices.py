"""Notices about a meeting: who gets them, and what they read in their own language."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from bot import i18n
from bot.core import Obsolete
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from handlers.notices import notice_message
from storage.models import Delivery, DeliveryState, Identity, Meeting, NoticeKind
from storage.notices import attending, changed_fields, queue_notice
from tests.helpers import NOW, Chat, Sessions, add_meeting, buttons, stored


async def _answered(dispatcher: Dispatcher, sessions: Sessions) -> tuple[int, dict[str, int]]:
    """Store a meeting that three members answered yes, maybe and no."""
    async with sessions() as session:
        meeting = await add_meeting(session, "2. Netzwerktreffen", NOW + dt.timedelta(days=3))
        await session.commit()
    for name, answer in (("ja", "yes"), ("vielleicht", "maybe"), ("nein", "no")):
        await Chat(dispatcher, name).send(f"/rsvp {meeting.id} {answer}")
    members = dict(await stored(sessions, select(Identity.user_id, Identity.member_id)))
    return meeting.id, members


async def test_a_change_is_queued_for_those_who_answered_yes_or_maybe(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id, members = await _answered(dispatcher, sessions)
    async with sessions() as session:
        told = await attending(session, meeting_id)
        await queue_notice(session, meeting_id, NoticeKind.CANCELLED, told, NOW)
        await session.commit()
    rows = await stored(sessions, select(Delivery.member_id, Delivery.state, Delivery.meeting_id))
    assert sorted(rows) == sorted(
        [
            (members["ja"], DeliveryState.PENDING, None),
            (members["vielleicht"], DeliveryState.PENDING, None),
        ]
    )


async def test_a_changed_meeting_shows_old_and_new_in_the_members_language(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id, members = await _answered(dispatcher, sessions)
    async with sessions() as session:
        meeting = await session.get(Meeting, meeting_id)
        assert meeting is not None
        before = {"starts_at": meeting.starts_at, "location": meeting.location}
        meeting.starts_at += dt.timedelta(days=1, hours=1)
        meeting.location = "Rathaus <Ratssaal>"
        changes = changed_fields(meeting, before)
        notice_id = await queue_notice(
            session, meeting_id, NoticeKind.CHANGED, [members["ja"]], NOW, changes=changes
        )
        await session.commit()
        texts = {}
        for language in ("de", "en"):
            with i18n.using(i18n.localizer(language, dispatcher.timezone)):
                reply = await notice_message(session, notice_id, members["ja"])
            texts[language] = reply.text
    assert to_plain(texts["de"]) == (
        f"🔔 Geändert: 2. Netzwerktreffen #{meeting_id}\n"
        "Beginn: Sa., 28. Nov. 2026, 11:00 Uhr → So., 29. Nov. 2026, 12:00 Uhr\n"
        "Ort: IHK Düsseldorf → Rathaus <Ratssaal>"
    )
    assert to_plain(texts["en"]).startswith(f"🔔 Changed: 2. Netzwerktreffen #{meeting_id}\n")
    assert "Rathaus &lt;Ratssaal&gt;" in texts["de"]
    assert buttons(reply) == [
        f"rsvp:{meeting_id}:yes",
        f"rsvp:{meeting_id}:maybe",
        f"rsvp:{meeting_id}:no",
        f"meeting:{meeting_id}",
    ]


async def test_a_cancellation_reaches_even_who_declined_since_a_change_does_not(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    meeting_id, members = await _answered(dispatcher, sessions)
    async with sessions() as session:
        changed = await queue_notice(
            session,
            meeting_id,
            NoticeKind.CHANGED,
            [members["nein"]],
            NOW,
            changes={"location": ("IHK", "Rathaus")},
        )
        cancelled = await queue_notice(
            session, meeting_id, NoticeKind.CANCELLED, [members["nein"]], NOW
        )
        await session.commit()
        with i18n.using(i18n.localizer("de", dispatcher.timezone)):
            reply = await notice_message(session, cancelled, members["nein"])
            assert to_plain(reply.text) == (
                f"❌ Abgesagt: 2. Netzwerktreffen #{meeting_id}\n"
                "Sa., 28. Nov. 2026, 11:00–14:00 Uhr"
            )
            with pytest.raises(Obsolete, match="declined"):
                await notice_message(session, changed, members["nein"])
