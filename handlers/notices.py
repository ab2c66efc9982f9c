"""The notices members get about a meeting they answered: changed, cancelled, a place free."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Button, Obsolete, Reply
from bot.i18n import N_, _, format_when
from bot.markup import bold, code, lines
from handlers.meetings import answer_buttons
from storage.meetings import answer_of
from storage.models import Answer, NoticeKind
from storage.notices import Change, notice_of

FIELD_NAMES = {
    "title": N_("Title"),
    "starts_at": N_("Starts"),
    "ends_at": N_("Ends"),
    "location": N_("Place"),
    "online_url": N_("Online link"),
    "agenda": N_("Agenda"),
}
MOMENTS = {"starts_at", "ends_at"}
# A field's value as a change shows it.
Shown = str | dt.datetime | None


async def notice_message(session: AsyncSession, notice_id: int, member_id: int) -> Reply:
    """Return a notice about a meeting, in the language of the member it is for."""
    notice = await notice_of(session, notice_id)
    if notice is None:
        raise Obsolete(f"notice {notice_id} or its meeting is gone")
    meeting = notice.meeting
    title = Markup("{} {}").format(bold(meeting.title), code(f"#{meeting.id}"))
    details = (Button(_("Details #{id}").format(id=meeting.id), "meeting", str(meeting.id)),)
    if notice.kind is NoticeKind.CANCELLED:
        heading = Markup.escape(_("❌ Cancelled: {title}")).format(title=title)
        return Reply(lines([heading, format_when(meeting.starts_at, meeting.ends_at)]))
    if notice.kind is NoticeKind.MOVED_UP:
        heading = Markup.escape(_("✅ A place became free: you attend {title}.")).format(
            title=title
        )
        when = format_when(meeting.starts_at, meeting.ends_at)
        return Reply(lines([heading, when, meeting.location]), (details,))
    if await answer_of(session, meeting.id, member_id) is Answer.NO:
        raise Obsolete(f"member {member_id} declined meeting {meeting.id} since")
    heading = Markup.escape(_("🔔 Changed: {title}")).format(title=title)
    changed = [_change(field, change) for field, change in notice.changes.items()]
    return Reply(lines([heading, *changed]), (answer_buttons(meeting), details))


def _change(field: str, change: Change) -> Markup:
    old, new = (
        dt.datetime.fromisoformat(value) if value and field in MOMENTS else value
        for value in change
    )
    return change_line(field, old, new)


def change_line(
    field: str, old: str | dt.datetime | None, new: str | dt.datetime | None
) -> Markup:
    """Return one changed field as a line: its name, the old value struck through, the new."""

    def shown(value: Shown) -> str:
        if value is None or value == "":
            return "–"
        return format_when(value) if isinstance(value, dt.datetime) else value

    return Markup("{}: <s>{}</s> → {}").format(
        _(FIELD_NAMES.get(field, field)), shown(old), bold(shown(new))
    )
