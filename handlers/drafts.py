"""Meeting drafts: what coordinators type, read into a meeting's columns and previewed."""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from markupsafe import Markup
from sqlalchemy import func, select

from bot import i18n
from bot.core import Button, Reply, UserError
from bot.i18n import N_, _, ngettext
from bot.markup import blocks, bold, code, italic, lines
from bot.routing import Context
from handlers.meeting_cards import meeting_card, stored_meeting
from handlers.moments import parse_end, parse_span
from handlers.notices import change_line
from storage.dialogs import save_dialog
from storage.meetings import MeetingSummary, meeting_summary
from storage.models import Meeting
from storage.notices import attending
from storage.planning import MeetingDraft, Value

# A dialog or a preview left alone this long is over.
DIALOG_TTL = dt.timedelta(minutes=30)
NEW, EDIT, CANCEL = "newmeeting", "editmeeting", "cancelmeeting"
PREVIEW = "preview"
# The columns' sizes.
TITLE_LIMIT, PLACE_LIMIT, URL_LIMIT = 200, 300, 500
MOMENTS = ("starts_at", "ends_at")
# What a person may write to clear a field.
NOTHING = {"-", "–", "—"}
# The words for what /editmeeting changes, in English and German.
FIELD_WORDS = {
    "title": ("title", "titel", "name"),
    "time": ("time", "zeit", "date", "datum", "when", "wann", "beginn", "start"),
    "end": ("end", "ende"),
    "place": ("place", "ort", "location", "where", "wo", "raum"),
    "link": ("link", "url", "online"),
    "agenda": ("agenda", "tagesordnung", "programm"),
}
FIELD_LABELS = {
    "title": N_("Title"),
    "time": N_("Time"),
    "end": N_("End"),
    "place": N_("Place"),
    "link": N_("Online link"),
    "agenda": N_("Agenda"),
}


# --- previews --------------------------------------------------------------------------


async def new_preview(ctx: Context, data: dict[str, Any]) -> Reply:
    """Show a new meeting as members will see it, with Save and Cancel."""
    draft = draft_of(data)
    next_id = (await ctx.session.scalar(select(func.max(Meeting.id))) or 0) + 1
    meeting = Meeting(id=next_id, **_columns(draft))
    token = await keep(ctx, NEW, PREVIEW, data)
    return _preview(
        [italic(_("Preview: this is how members will see it.")), await member_view(ctx, meeting)],
        data.get("notes", []),
        token,
    )


async def edit_preview(ctx: Context, meeting: Meeting, field: str, value: str) -> Reply:
    """Show a change old → new and the meeting as it will be, with Save and Cancel."""
    changes, notes = read_change(meeting, field, value, ctx.now)
    shown = {column: new for column, new in changes.items() if getattr(meeting, column) != new}
    if not shown:
        raise UserError(
            _("That is how the meeting is already; nothing to change."), show_usage=False
        )
    data = {"meeting_id": meeting.id, "sequence": meeting.sequence, "notes": notes}
    data["changes"] = {
        k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in shown.items()
    }
    token = await keep(ctx, EDIT, PREVIEW, data)
    after = Meeting(**{c: getattr(meeting, c) for c in ("id", *_COLUMNS)} | shown)
    told = len(await attending(ctx.session, meeting.id))
    heading = Markup("{} {}").format(bold(_("Change this meeting?")), code(f"#{meeting.id}"))
    changed = [change_line(column, getattr(meeting, column), new) for column, new in shown.items()]
    who = ngettext(
        "{count} member who answered yes or maybe will be told.",
        "{count} members who answered yes or maybe will be told.",
        told,
    ).format(count=told)
    return _preview(
        [
            lines([heading, *changed]),
            italic(_("Members will see:")),
            await member_view(ctx, after),
            who,
        ],
        notes,
        token,
    )


def _preview(parts: list[Markup | str], notes: list[str], token: str) -> Reply:
    buttons = (Button(_("💾 Save"), "meeting_save", token), Button(_("✖ Cancel"), "cancel"))
    return Reply(blocks([*parts, *(italic(note) for note in notes)]), (buttons,))


async def member_view(ctx: Context, meeting: Meeting) -> Markup:
    """Return a meeting as /meeting shows it to members: the card and the agenda."""
    # A preview's meeting is not stored (yet, or not as changed): the counts are the stored one's.
    stored = await meeting_summary(ctx.session, meeting.id) if meeting.id else None
    summary = MeetingSummary(
        meeting,
        stored.answers if stored else Counter(),
        waiting=stored.waiting if stored else 0,
    )
    agenda = lines([bold(_("Agenda")), meeting.agenda]) if meeting.agenda else None
    return blocks([meeting_card(summary, ctx.now), agenda])


# --- reading what coordinators write ---------------------------------------------------

_COLUMNS = ("title", "starts_at", "ends_at", "location", "online_url", "agenda")


def _columns(draft: MeetingDraft) -> dict[str, Value]:
    return {column: getattr(draft, column) for column in _COLUMNS}


def draft_of(data: dict[str, Any]) -> MeetingDraft:
    """Return the meeting a dialog or a one-line command described."""
    ends = data.get("ends_at")
    return MeetingDraft(
        title=data["title"],
        starts_at=dt.datetime.fromisoformat(data["starts_at"]),
        ends_at=dt.datetime.fromisoformat(ends) if ends else None,
        location=data.get("location"),
        online_url=data.get("online_url"),
        agenda=data.get("agenda"),
    )


def changes_of(data: dict[str, Any]) -> dict[str, Value]:
    """Return the changes a preview stored, with moments as datetimes again."""
    changes: dict[str, Value] = dict(data["changes"])
    for column in MOMENTS:
        value = changes.get(column)
        if isinstance(value, str):
            changes[column] = dt.datetime.fromisoformat(value)
    return changes


def read_title(text: str) -> str:
    """Return a meeting title, or refuse an empty or overlong one."""
    title = " ".join(text.split())
    if not title:
        raise UserError(_("The meeting needs a title."), show_usage=False)
    if len(title) > TITLE_LIMIT:
        raise UserError(
            _("A title may have at most {limit} characters.").format(limit=TITLE_LIMIT),
            show_usage=False,
        )
    return title


def read_url(text: str) -> str | None:
    """Return the text as an online link if it is one (http or https)."""
    text = text.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() in {"http", "https"} and parts.netloc and " " not in text:
        if len(text) > URL_LIMIT:
            raise UserError(
                _("A link may have at most {limit} characters.").format(limit=URL_LIMIT),
                show_usage=False,
            )
        return text
    return None


def read_place(text: str) -> dict[str, str | None]:
    """Return a link as the online link and any other text as the place."""
    url = read_url(text)
    if url is not None:
        return {"location": None, "online_url": url}
    place = " ".join(text.split())
    if not place:
        raise UserError(
            _("Where does it take place? Give a place or an online link."), show_usage=False
        )
    if len(place) > PLACE_LIMIT:
        raise UserError(
            _("A place may have at most {limit} characters.").format(limit=PLACE_LIMIT),
            show_usage=False,
        )
    return {"location": place, "online_url": None}


def field_named(word: str) -> str:
    """Return the field a word names (English or German), or refuse with the choices."""
    word = word.strip().casefold().rstrip(":")
    for field, words in FIELD_WORDS.items():
        if word in words:
            return field
    names = ", ".join(_(label) for label in FIELD_LABELS.values())
    raise UserError(
        _("I do not know what “{word}” is. You can change: {names}.").format(
            word=word, names=names
        )
    )


def read_change(
    meeting: Meeting, field: str, value: str, now: dt.datetime
) -> tuple[dict[str, Value], list[str]]:
    """Return the columns a change sets, and notes on how the value was read."""
    zone = i18n.current().timezone
    cleared = value.strip() in NOTHING
    if field == "title":
        return {"title": read_title(value)}, []
    if field == "time":
        span = parse_span(value, now, zone)
        ends = span.ends
        if ends is None and meeting.ends_at is not None:
            ends = span.starts + (meeting.ends_at - meeting.starts_at)  # keep the length
        return {"starts_at": span.starts, "ends_at": ends}, list(span.notes)
    if field == "end":
        return {"ends_at": None if cleared else parse_end(value, meeting.starts_at, now, zone)}, []
    if field == "agenda":
        return {"agenda": None if cleared else value.strip()}, []
    if field == "link":
        url = None if cleared else read_url(value)
        if url is None and not cleared:
            raise UserError(_("A link starts with https:// or http://."), show_usage=False)
        changes: dict[str, Value] = {"online_url": url}
    else:
        changes = {"location": None if cleared else read_place(value)["location"]}
        if not cleared and changes["location"] is None:
            return read_change(meeting, "link", value, now)
    if not (
        changes.get("location", meeting.location) or changes.get("online_url", meeting.online_url)
    ):
        raise UserError(_("A meeting needs a place or an online link."), show_usage=False)
    return changes, []


async def changeable(ctx: Context, number: str) -> Meeting:
    """Return the meeting a number names, if it can still be changed."""
    meeting = await stored_meeting(ctx, number)
    if meeting.cancelled_at is not None:
        raise UserError(_("This meeting is cancelled already."), show_usage=False)
    return meeting


# --- dialog state ----------------------------------------------------------------------


async def keep(ctx: Context, kind: str, step: str, data: dict[str, Any]) -> str:
    """Store where a coordinator's dialog stands; return the code its Save button carries."""
    if step == PREVIEW:
        data = data | {"token": secrets.token_hex(4)}
    await save_dialog(
        ctx.session, ctx.member.id, kind, step, data, expires_at=ctx.now + DIALOG_TTL, now=ctx.now
    )
    return str(data.get("token", ""))
