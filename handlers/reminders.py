"""Reminders before meetings: each member's own offsets, and the reminder message itself."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Button, Obsolete, Reply, Request, UserError
from bot.durations import format_minutes, parse_minutes
from bot.i18n import N_, _, format_time_left, format_when
from bot.markup import bold, code, lines
from bot.routing import Context, Router
from handlers.meetings import answer_buttons
from storage.attendance import waiting_place
from storage.meetings import answer_of
from storage.members import subscriptions_of
from storage.models import Answer, Meeting, Topic
from storage.reminders import drop_planned_reminders, offsets_of

router = Router("reminders")
OFF_WORDS = {"off", "aus", "keine", "none"}


@router.command(
    "reminders",
    help=N_("when you are reminded of meetings"),
    usage=N_("/reminders [1d 2h | off]"),
    group=False,
    names={"de": "erinnerungen"},
)
async def set_reminders(request: Request, ctx: Context) -> Reply:
    """Show the member's reminder offsets, or set their own (or none)."""
    words = request.words
    if words:
        if len(words) == 1 and words[0].lower() in OFF_WORDS:
            ctx.member.reminder_offsets = ""
        else:
            minutes = [parse_minutes(word) for word in words]
            wrong = [word for word, value in zip(words, minutes, strict=True) if value is None]
            if wrong or len(words) > 5:
                raise UserError(
                    _(
                        "“{word}” is no duration such as 1d, 2h or 30m (at most five, 60 days)."
                    ).format(word=(wrong or words)[0][:40])
                )
            chosen = sorted({value for value in minutes if value is not None}, reverse=True)
            ctx.member.reminder_offsets = " ".join(str(value) for value in chosen)
        await drop_planned_reminders(ctx.session, member_id=ctx.member.id)
    offsets = offsets_of(ctx.member, ctx.reminder_offsets)
    shown = (
        _("Reminders: {offsets} before each meeting you have not declined.").format(
            offsets=", ".join(format_minutes(offset) for offset in offsets)
        )
        if offsets
        else _("Reminders: off.")
    )
    parts: list[str | Markup] = [bold(shown)]
    if Topic.REMINDERS not in await subscriptions_of(ctx.session, ctx.member.id):
        parts.append(
            Markup.escape(_("You do not get them yet: {command} turns them on.")).format(
                command=code("/subscribe reminders")
            )
        )
    parts.append(
        Markup.escape(_("Change with {example}, or {off}.")).format(
            example=code("/reminders 1d 2h"), off=code("/reminders off")
        )
    )
    return Reply(lines(parts))


async def reminder_message(
    session: AsyncSession, meeting_id: int, member_id: int, now: dt.datetime
) -> Reply:
    """Return a reminder of a meeting for one member, worded for the time left."""
    meeting = await session.get(Meeting, meeting_id)
    if meeting is None or meeting.cancelled_at is not None or meeting.starts_at <= now:
        raise Obsolete(f"meeting {meeting_id} is cancelled, gone or has begun")
    if await answer_of(session, meeting_id, member_id) is Answer.NO:
        raise Obsolete(f"member {member_id} declined meeting {meeting_id}")
    place = meeting.location or meeting.online_url or ""
    heading = _("⏰ Reminder: “{title}” begins {left}").format(
        title=meeting.title, left=format_time_left(meeting.starts_at - now)
    )
    waiting = await waiting_place(session, meeting_id, member_id)
    text = lines(
        [
            bold(heading),
            format_when(meeting.starts_at, meeting.ends_at),
            place or None,
            # Not declined, but no place yet: the reminder must not read as one.
            _("You are on the waiting list, place {place}.").format(place=waiting)
            if waiting is not None
            else None,
        ]
    )
    details = (Button(_("Details #{id}").format(id=meeting.id), "meeting", str(meeting.id)),)
    return Reply(text, (answer_buttons(meeting), details))
