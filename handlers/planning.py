"""Planning meetings from chat: coordinators create, change and cancel them after a preview."""

from __future__ import annotations

from typing import Any

from bot import i18n
from bot.core import Button, Reply, Request, Role, UserError
from bot.i18n import N_, _, ngettext
from bot.markup import blocks, bold
from bot.routing import Context, Router
from handlers.dialogs import ask, ask_field, ask_value
from handlers.drafts import (
    CANCEL,
    EDIT,
    NEW,
    PREVIEW,
    changeable,
    changes_of,
    draft_of,
    edit_preview,
    field_named,
    keep,
    member_view,
    new_preview,
    read_place,
    read_title,
)
from handlers.moments import parse_span
from storage.dialogs import DONE, dialog_data, dialog_of, save_dialog
from storage.models import Meeting
from storage.notices import attending
from storage.planning import DuplicateMeeting, apply_changes, cancel_meeting, create_meeting

router = Router("planning")


@router.command(
    "newmeeting",
    help=N_("plan a new meeting"),
    usage=N_("/newmeeting [TITLE | DATE TIME[-END] | PLACE or LINK | AGENDA]"),
    role=Role.COORDINATOR,
    names={"de": "neuestreffen"},
    group=False,
)
async def new_meeting(request: Request, ctx: Context) -> Reply:
    """Preview a meeting given on one line, or start the dialog that asks step by step."""
    if not request.args.strip():
        await keep(ctx, NEW, "title", {})
        return ask("title")
    parts = [part.strip() for part in request.args.split("|")]
    if len(parts) < 3:
        raise UserError(
            _("Separate the title, the date and time, the place or link and the agenda with |.")
        )
    title, when, where, *agenda = parts
    data: dict[str, Any] = {"title": read_title(title)}
    span = parse_span(when, ctx.now, i18n.current().timezone)
    data |= {"starts_at": span.starts.isoformat(), "notes": list(span.notes)}
    data["ends_at"] = span.ends.isoformat() if span.ends else None
    data |= read_place(where)
    data["agenda"] = " | ".join(agenda) or None
    return await new_preview(ctx, data)


@router.command(
    "editmeeting",
    help=N_("change a meeting; those who attend are told"),
    usage=N_("/editmeeting ID [time|place|link|title|agenda|end VALUE]"),
    role=Role.COORDINATOR,
    names={"de": "treffenaendern"},
    group=False,
)
async def edit_meeting(request: Request, ctx: Context) -> Reply:
    """Preview a change of a meeting, or ask what to change."""
    number, _space, rest = request.args.strip().partition(" ")
    meeting = await changeable(ctx, number)
    field, _space, value = rest.strip().partition(" ")
    if not field:
        await keep(ctx, EDIT, "field", {"meeting_id": meeting.id})
        return ask_field(meeting)
    name = field_named(field)
    if not value.strip():
        await keep(ctx, EDIT, "value", {"meeting_id": meeting.id, "field": name})
        return ask_value(name)
    return await edit_preview(ctx, meeting, name, value)


@router.command(
    "cancelmeeting",
    help=N_("cancel a meeting; those who attend are told"),
    usage=N_("/cancelmeeting ID"),
    role=Role.COORDINATOR,
    names={"de": "treffenabsagen"},
    group=False,
)
async def cancel_meeting_preview(request: Request, ctx: Context) -> Reply:
    """Ask to confirm a cancellation, showing who will be told."""
    meeting = await changeable(ctx, request.args)
    if (meeting.ends_at or meeting.starts_at) <= ctx.now:
        raise UserError(_("This meeting is over; it cannot be cancelled."), show_usage=False)
    token = await keep(
        ctx, CANCEL, PREVIEW, {"meeting_id": meeting.id, "sequence": meeting.sequence}
    )
    told = len(await attending(ctx.session, meeting.id))
    question = bold(_("Cancel this meeting?"))
    who = ngettext(
        "{count} member who answered yes or maybe will be told.",
        "{count} members who answered yes or maybe will be told.",
        told,
    ).format(count=told)
    card = await member_view(ctx, meeting)
    buttons = (
        Button(_("❌ Cancel the meeting"), "meeting_save", token),
        Button(_("↩ Keep it"), "cancel"),
    )
    return Reply(blocks([question, card, who]), (buttons,))


@router.command(
    "meeting_save",
    help=N_("store a previewed meeting or change"),
    usage=N_("/meeting_save CODE"),
    role=Role.COORDINATOR,
    group=False,
)
async def save_meeting(request: Request, ctx: Context) -> Reply:
    """Store what the preview showed, once; a second press or an old preview stores nothing."""
    dialog = await dialog_of(ctx.session, ctx.member.id)
    data = dialog_data(dialog) if dialog else {}
    if dialog is None or data.get("token") != request.args.strip():
        raise UserError(
            _(
                "This preview is out of date, so nothing was stored. "
                "Please send the command again."
            ),
            show_usage=False,
        )
    if dialog.step == DONE:
        raise UserError(
            _("This was stored already (#{id}); nothing was stored twice.").format(
                id=data["meeting_id"]
            ),
            show_usage=False,
        )
    if dialog.expires_at <= ctx.now or dialog.step != PREVIEW:
        raise UserError(
            _("This preview has expired, so nothing was stored. Please send the command again."),
            show_usage=False,
        )
    if dialog.kind == NEW:
        meeting, text = await _store_new(ctx, data)
    else:
        meeting, text = await _store_change(ctx, dialog.kind, data)
    done = {"token": data["token"], "meeting_id": meeting.id}
    await save_dialog(
        ctx.session,
        ctx.member.id,
        dialog.kind,
        DONE,
        done,
        expires_at=dialog.expires_at,
        now=ctx.now,
    )
    return Reply(blocks([text, await member_view(ctx, meeting)]), edit_origin=True)


async def _store_new(ctx: Context, data: dict[str, Any]) -> tuple[Meeting, str]:
    try:
        meeting = await create_meeting(ctx.session, draft_of(data), ctx.now)
    except DuplicateMeeting as duplicate:
        raise _duplicate(duplicate) from None
    return meeting, _("✅ Saved as #{id}: members find it in /meetings.").format(id=meeting.id)


async def _store_change(ctx: Context, kind: str, data: dict[str, Any]) -> tuple[Meeting, str]:
    meeting = await ctx.session.get(Meeting, int(data["meeting_id"]))
    if meeting is None or meeting.cancelled_at is not None:
        raise UserError(_("This meeting was cancelled or removed meanwhile."), show_usage=False)
    if meeting.sequence != data["sequence"]:
        raise UserError(
            _(
                "The meeting was changed since this preview, so nothing was stored. "
                "Please send the command again."
            ),
            show_usage=False,
        )
    if kind == CANCEL:
        told = await cancel_meeting(ctx.session, meeting, ctx.now)
        return meeting, _cancelled_text(told)
    try:
        changed = await apply_changes(ctx.session, meeting, changes_of(data), ctx.now)
    except DuplicateMeeting as duplicate:
        raise _duplicate(duplicate) from None
    told = len(await attending(ctx.session, meeting.id)) if changed else 0
    return meeting, ngettext(
        "✅ Changed. {count} member who answered yes or maybe is told.",
        "✅ Changed. {count} members who answered yes or maybe are told.",
        told,
    ).format(count=told)


def _cancelled_text(told: int) -> str:
    return ngettext(
        "❌ Cancelled. {count} member who answered yes or maybe is told.",
        "❌ Cancelled. {count} members who answered yes or maybe are told.",
        told,
    ).format(count=told)


def _duplicate(duplicate: DuplicateMeeting) -> UserError:
    return UserError(
        _("Meeting #{id} has this title and start already; nothing was stored.").format(
            id=duplicate.meeting_id
        ),
        show_usage=False,
    )
