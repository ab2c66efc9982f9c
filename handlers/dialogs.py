"""Guided dialogs: a plain message answers the step a coordinator's dialog is at."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from markupsafe import Markup

from bot import i18n
from bot.core import Button, Reply, Request, Role, UserError
from bot.i18n import N_, _
from bot.markup import bold, code, lines
from bot.routing import Command, Context, Router
from handlers.drafts import (
    DIALOG_TTL,
    EDIT,
    FIELD_LABELS,
    NEW,
    NOTHING,
    PREVIEW,
    changeable,
    edit_preview,
    field_named,
    keep,
    new_preview,
    read_place,
    read_title,
)
from handlers.moments import parse_end, parse_span
from storage.dialogs import DONE, dialog_data, dialog_of, drop_dialog
from storage.models import Dialog, Meeting

router = Router("dialogs")
# The words that skip an optional step when typed instead of pressing Skip.
SKIP_WORDS = {"skip", "überspringen", "ueberspringen", "weiter", "keine", "keins", "none"}


async def answer_dialog(request: Request, ctx: Context) -> Reply:
    """Take a plain message as the answer to the step the member's dialog is at."""
    dialog = await _live(ctx)
    if isinstance(dialog, Reply):
        return dialog
    text = request.args.strip()
    skipped = text.casefold() in SKIP_WORDS or text in NOTHING
    return await _advance(ctx, dialog, None if skipped else text)


async def _advance(ctx: Context, dialog: Dialog, text: str | None) -> Reply:
    """Take the answer to the dialog's step; refusals have no usage line to show."""
    try:
        return await _step(ctx, dialog, text)
    except UserError as error:
        raise UserError(error.message, show_usage=False) from None


# Dispatch routes a plain message in a private chat here while its sender is in a dialog.
DIALOG = Command("", answer_dialog, "", "")


@router.command(
    "skip",
    help=N_("skip an optional step of a dialog"),
    usage=N_("/skip"),
    role=Role.COORDINATOR,  # only coordinators have dialogs so far
    names={"de": "weiter"},
    group=False,
)
async def skip_step(request: Request, ctx: Context) -> Reply:
    """Leave an optional step of the dialog empty."""
    dialog = await _live(ctx)
    if isinstance(dialog, Reply):
        return dialog
    return await _advance(ctx, dialog, None)


@router.command(
    "cancel",
    help=N_("stop a dialog or a preview; nothing is stored"),
    usage=N_("/cancel"),
    role=Role.COORDINATOR,
    names={"de": "abbrechen"},
    group=False,
)
async def cancel_dialog(request: Request, ctx: Context) -> Reply:
    """End the member's dialog without storing anything."""
    dialog = await dialog_of(ctx.session, ctx.member.id)
    if dialog is None or dialog.step == DONE:
        return Reply(Markup.escape(_("Nothing is in progress, so there is nothing to stop.")))
    await drop_dialog(ctx.session, ctx.member.id)
    return Reply(Markup.escape(_("Stopped: nothing was stored.")), edit_origin=request.via_button)


async def _live(ctx: Context) -> Dialog | Reply:
    """Return the member's dialog waiting for an answer, or the reply that it has expired."""
    dialog = await dialog_of(ctx.session, ctx.member.id)
    if dialog is None or dialog.step == DONE:
        raise UserError(
            _("Nothing is in progress, so there is nothing to stop."), show_usage=False
        )
    if dialog.expires_at <= ctx.now:
        await drop_dialog(ctx.session, ctx.member.id)
        command = _local_name(ctx, dialog.kind)
        text = _(
            "Your {command} expired after {minutes} minutes without an answer, so your "
            "message was not taken as an answer and nothing was stored. Send {command} "
            "to start again."
        ).format(command=command, minutes=int(DIALOG_TTL.total_seconds() // 60))
        return Reply(Markup.escape(text), is_error=True)
    if ctx.role < Role.COORDINATOR:
        await drop_dialog(ctx.session, ctx.member.id)
        text = _("This dialog is for the network's coordinators.")
        return Reply(Markup.escape(text), is_error=True)
    return dialog


def _local_name(ctx: Context, name: str) -> str:
    for command in ctx.commands:
        if command.name == name:
            return f"/{command.name_in(i18n.current().language)}"
    return f"/{name}"


async def _step(ctx: Context, dialog: Dialog, text: str | None) -> Reply:
    data = dialog_data(dialog)
    # A preview waits for its buttons.
    if dialog.step != PREVIEW and dialog.kind == NEW:
        return await _new_step(ctx, dialog.step, data, text)
    if dialog.step != PREVIEW and dialog.kind == EDIT:
        return await _edit_step(ctx, dialog.step, data, text)
    raise UserError(_("Please press one of the buttons, or send /cancel."), show_usage=False)


async def _new_step(ctx: Context, step: str, data: dict[str, Any], text: str | None) -> Reply:
    """Store the answer to one step of /newmeeting and ask the next question."""
    if text is None and step not in SKIPPABLE:
        return _again(step, _("This step cannot be skipped."))
    zone = i18n.current().timezone
    try:
        if step == "title":
            data["title"] = read_title(text or "")
            return await _next(ctx, data, "starts_at")
        if step == "starts_at":
            span = parse_span(text or "", ctx.now, zone)
            data |= {"starts_at": span.starts.isoformat(), "notes": list(span.notes)}
            if span.ends is None:
                return await _next(ctx, data, "ends_at")
            data["ends_at"] = span.ends.isoformat()
            return await _next(ctx, data, "place")
        if step == "ends_at":
            if text is not None:
                starts = dt.datetime.fromisoformat(data["starts_at"])
                data["ends_at"] = parse_end(text, starts, ctx.now, zone).isoformat()
            return await _next(ctx, data, "place")
        if step == "place":
            data |= read_place(text or "")
            return await _next(ctx, data, "agenda")
    except UserError as error:
        return _again(step, error.message)
    data["agenda"] = text
    return await new_preview(ctx, data)


async def _next(ctx: Context, data: dict[str, Any], step: str) -> Reply:
    await keep(ctx, NEW, step, data)
    return ask(step)


def _again(step: str, problem: str) -> Reply:
    """Refuse an answer, asking the step's question again (nothing is stored)."""
    question = ask(step)
    return replace(question, text=lines([problem, question.text]), is_error=True)


async def _edit_step(ctx: Context, step: str, data: dict[str, Any], text: str | None) -> Reply:
    """Take what to change, or its new value, and show the preview once both are known."""
    meeting = await changeable(ctx, str(data["meeting_id"]))
    if text is None:
        raise UserError(_("This step cannot be skipped."), show_usage=False)
    if step == "field":
        word, _space, value = text.partition(" ")
        field = field_named(word)
        if not value.strip():
            await keep(ctx, EDIT, "value", data | {"field": field})
            return ask_value(field)
        return await edit_preview(ctx, meeting, field, value)
    return await edit_preview(ctx, meeting, data["field"], text)


# --- questions --------------------------------------------------------------------------

QUESTIONS = {
    "title": N_("New meeting, step 1 of 5: what is its title?"),
    "starts_at": N_(
        "Step 2 of 5: when does it start? For example 29.03.2027 14:00, 29.3. 14 Uhr or "
        "2027-03-29 14:00; an end may follow, as in 14:00-17:00."
    ),
    "ends_at": N_("Step 3 of 5: when does it end? For example 17:00. Skip if it is open."),
    "place": N_(
        "Step 4 of 5: where does it take place? Send the place, or the link of an online meeting."
    ),
    "agenda": N_("Step 5 of 5: what is on the agenda? Skip if there is none yet."),
}
SKIPPABLE = {"ends_at", "agenda"}


def ask(step: str) -> Reply:
    """Return a dialog's question for a step, with Skip where it may be skipped."""
    buttons = [Button(_("✖ Cancel"), "cancel")]
    if step in SKIPPABLE:
        buttons.insert(0, Button(_("⏭ Skip"), "skip"))
    return Reply(Markup.escape(_(QUESTIONS[step])), (tuple(buttons),))


def ask_field(meeting: Meeting) -> Reply:
    """Ask what to change, with one button a field."""
    question = Markup.escape(
        _("What do you want to change in {title}? Press a button, or send for example {example}.")
    ).format(title=bold(meeting.title), example=code("time 30.03.2027 15:00-17:00"))
    fields = [
        Button(_(label), "editmeeting", f"{meeting.id} {field}")
        for field, label in FIELD_LABELS.items()
    ]
    return Reply(
        question, (tuple(fields[:3]), tuple(fields[3:]), (Button(_("✖ Cancel"), "cancel"),))
    )


def ask_value(field: str) -> Reply:
    """Ask for a field's new value."""
    examples = {
        "title": "3. Netzwerktreffen",
        "time": "30.03.2027 15:00-17:00",
        "end": "17:30",
        "place": "Rathaus, Marktplatz 2",
        "link": "https://example.org/treffen",
        "agenda": "Wärmepumpen im Bestand",
    }
    question = Markup.escape(
        _("What is the new value of “{field}”? For example {example}.")
    ).format(field=_(FIELD_LABELS[field]), example=code(examples[field]))
    if field in {"end", "place", "link", "agenda"}:
        question += Markup.escape(" ") + Markup.escape(_("Send - to clear it."))
    return Reply(question, ((Button(_("✖ Cancel"), "cancel"),),))
