"""Announcements: a coordinator previews, confirms and follows a broadcast to all subscribers."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, replace

import nh3
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import (
    Button,
    ChatId,
    MessageRef,
    Platform,
    Recipient,
    Reply,
    Request,
    Role,
    UserError,
)
from bot.i18n import N_, _, format_clock, format_date, format_number, local
from bot.markup import ALLOWED_TAGS, bold, italic, lines, to_plain
from bot.routing import Context, Router
from storage.announcements import (
    confirm_announcement,
    draft_announcement,
    pending_deliveries,
    recent_announcements,
    recipient_count,
)
from storage.models import Announcement, DeliveryState, Member
from storage.outbox import cancel_pending, delivery_counts, failure_reasons

router = Router("announcements")

# What members see fits one Telegram message with room for the line above it.
TEXT_LIMIT = 3500
# The progress message is edited at most this often, so the edits keep within the limits.
PROGRESS_EVERY = dt.timedelta(seconds=3)
# Telegram's overall pace, for the estimate of the time left.
SENDS_PER_SECOND = 27
PLATFORM_NAMES = {"telegram": "Telegram", "matrix": "Matrix", "console": N_("console")}
STATE_NAMES = {
    DeliveryState.DELIVERED: N_("delivered"),
    DeliveryState.UNREACHABLE: N_("unreachable"),
    DeliveryState.FAILED: N_("failed"),
    DeliveryState.CANCELLED: N_("stopped"),
    DeliveryState.EXPIRED: N_("expired"),
}


def safe_text(text: str) -> Markup:
    """Keep the safe HTML subset and links of a coordinator's text; escape everything else."""
    tags = ALLOWED_TAGS - {"blockquote"}
    cleaned = nh3.clean(
        text.strip(),
        tags=set(tags),
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    )
    return Markup(cleaned)  # nh3 keeps only the allowed tags, balanced


def member_message(announcement: Announcement, network: str) -> Reply:
    """Return an announcement as members receive it, in the current language."""
    heading = bold(_("📣 From the coordination of {network}").format(network=network))
    return Reply(heading + Markup("\n\n") + Markup(announcement.text))


@router.command(
    "announce",
    help=N_("send an announcement to every subscriber"),
    usage=N_("/announce TEXT"),
    role=Role.COORDINATOR,
    group=False,
    names={"de": "mitteilen"},
)
async def announce(request: Request, ctx: Context) -> Reply:
    """Store a draft and show it as members will see it, with Send and Cancel."""
    text = safe_text(request.args)
    length = len(to_plain(text))
    if not length:
        raise UserError(_("What should the announcement say? Write it after the command."))
    if length > TEXT_LIMIT:
        raise UserError(
            _(
                "An announcement may have at most {limit} characters; this one has {length}."
            ).format(limit=format_number(TEXT_LIMIT, 0), length=format_number(length, 0)),
            show_usage=False,
        )
    announcement = await draft_announcement(ctx.session, str(text), ctx.member.id, ctx.now)
    count = await recipient_count(ctx.session)
    held = ctx.quiet_hours.end_after(ctx.now) if ctx.quiet_hours else None
    notes = [
        italic(_("Preview: this is how members will see it.")),
        "",
        member_message(announcement, ctx.network).text,
        "",
        bold(_("Recipients: {count}").format(count=count)),
    ]
    if held is not None:
        notes.append(
            _("Quiet hours now: it goes out at {time} on {date}.").format(
                time=format_clock(held), date=format_date(held)
            )
        )
    buttons = (
        Button(_("📣 Send"), "announce_send", str(announcement.id)),
        Button(_("✖ Cancel"), "announce_drop", str(announcement.id)),
    )
    return Reply(lines(notes), buttons=(buttons,))


async def _announcement(request: Request, ctx: Context) -> Announcement:
    number = request.args.strip()
    found = await ctx.session.get(Announcement, int(number)) if number.isdigit() else None
    if found is None:
        raise UserError(_("There is no such announcement."), show_usage=False)
    return found


async def _draft(request: Request, ctx: Context) -> Announcement:
    """Return the announcement a button names, if it is still a draft to send or discard."""
    found = await _announcement(request, ctx)
    if found.cancelled_at is not None:
        raise UserError(_("This announcement was cancelled."), show_usage=False)
    if found.confirmed_at is not None:
        raise UserError(_("This announcement is being sent already."), show_usage=False)
    return found


@router.command(
    "announce_send",
    help=N_("send a previewed announcement"),
    usage=N_("/announce_send ID"),
    role=Role.COORDINATOR,
    group=False,
)
async def send_announcement(request: Request, ctx: Context) -> Reply:
    """Queue the announcement for every subscriber; the reply becomes its progress."""
    announcement = await _draft(request, ctx)
    send_from = ctx.quiet_hours.end_after(ctx.now) if ctx.quiet_hours else None
    await confirm_announcement(ctx.session, announcement, ctx.now, send_from or ctx.now)
    announcement.progress_platform = request.platform
    announcement.progress_chat = request.chat_id
    announcement.progress_message = request.origin
    announcement.progress_shown_at = ctx.now
    note = await progress_note(ctx.session, announcement, ctx.now, send_from)
    return replace(progress_reply(note), edit_origin=True)


@router.command(
    "announce_drop",
    help=N_("discard a previewed announcement"),
    usage=N_("/announce_drop ID"),
    role=Role.COORDINATOR,
    group=False,
)
async def drop_announcement(request: Request, ctx: Context) -> Reply:
    """Discard a draft that was not sent."""
    announcement = await _draft(request, ctx)
    announcement.cancelled_at = ctx.now
    return Reply(Markup.escape(_("Discarded: nobody received it.")), edit_origin=True)


@router.command(
    "announce_stop",
    help=N_("stop sending an announcement"),
    usage=N_("/announce_stop ID"),
    role=Role.COORDINATOR,
    group=False,
)
async def stop_announcement(request: Request, ctx: Context) -> Reply:
    """Stop what is not sent yet and show the report."""
    announcement = await _announcement(request, ctx)
    if announcement.confirmed_at is None:
        raise UserError(_("There is no such announcement."), show_usage=False)
    await cancel_pending(ctx.session, announcement.id, ctx.now)
    note = await progress_note(ctx.session, announcement, ctx.now)
    return replace(progress_reply(note), edit_origin=True)


@router.command(
    "announcements",
    help=N_("recent announcements and what reached whom"),
    usage=N_("/announcements"),
    role=Role.COORDINATOR,
    group=False,
    names={"de": "mitteilungen"},
)
async def list_announcements(request: Request, ctx: Context) -> Reply:
    """List the latest announcements with their delivery reports."""
    found = await recent_announcements(ctx.session)
    if not found:
        return Reply(Markup.escape(_("No announcement has been sent yet.")))
    parts: list[str | Markup] = [bold(_("Recent announcements"))]
    for announcement in found:
        note = await progress_note(ctx.session, announcement, ctx.now)
        assert announcement.confirmed_at is not None
        when = local(announcement.confirmed_at)
        first_line = to_plain(Markup(announcement.text)).splitlines()[0][:60]
        parts += ["", bold(f"{format_date(when)} {format_clock(when)}: {first_line}")]
        parts.append(_report_lines(note))
    return Reply(lines(parts))


# --- progress, as the delivery worker shows it -------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgressNote:
    """Where an announcement stands, and where its coordinator watches it."""

    announcement_id: int
    counts: Counter[tuple[str, DeliveryState]]
    pending: int
    failures: Counter[str]
    stopped: bool
    send_from: dt.datetime | None = None
    watcher: Recipient | None = None
    message: MessageRef | None = None
    language: str | None = None

    @property
    def done(self) -> bool:
        """Tell whether nothing is left to send."""
        return self.pending == 0


async def progress_note(
    session: AsyncSession,
    announcement: Announcement,
    now: dt.datetime,
    send_from: dt.datetime | None = None,
) -> ProgressNote:
    """Count an announcement's deliveries."""
    counts = await delivery_counts(session, announcement.id)
    coordinator = await session.get(Member, announcement.created_by or 0)
    watcher = None
    if announcement.progress_platform and announcement.progress_chat:
        watcher = Recipient(
            Platform(announcement.progress_platform), ChatId(announcement.progress_chat)
        )
    return ProgressNote(
        announcement.id,
        counts,
        await pending_deliveries(session, announcement.id),
        await failure_reasons(session, announcement.id),
        stopped=any(state is DeliveryState.CANCELLED for _platform, state in counts),
        send_from=send_from if send_from and send_from > now else None,
        watcher=watcher,
        message=MessageRef(announcement.progress_message)
        if announcement.progress_message
        else None,
        language=coordinator.language if coordinator else None,
    )


async def due_progress(
    session: AsyncSession, announcement_id: int, now: dt.datetime
) -> ProgressNote | None:
    """Return the progress to show its coordinator now: every few seconds, and at the end."""
    announcement = await session.get(Announcement, announcement_id)
    if announcement is None or announcement.finished_at is not None:
        return None
    note = await progress_note(session, announcement, now)
    shown = announcement.progress_shown_at
    if not note.done and shown is not None and now - shown < PROGRESS_EVERY:
        return None
    announcement.progress_shown_at = now
    if note.done:
        announcement.finished_at = now
    return note


async def delivery_message(session: AsyncSession, announcement_id: int, network: str) -> Reply:
    """Return an announcement as one member receives it, in the current language."""
    announcement = await session.get(Announcement, announcement_id)
    if announcement is None:
        raise LookupError(f"announcement {announcement_id} is gone")
    return member_message(announcement, network)


def progress_reply(note: ProgressNote) -> Reply:
    """Return the progress message, or the delivery report once nothing is left to send."""
    if note.done:
        heading = _("Announcement sent: delivery report")
        if note.stopped:
            heading = _("Announcement stopped: delivery report")
        return Reply(lines([bold(heading), _report_lines(note)]))
    total = sum(note.counts.values())
    finished = total - note.pending
    seconds = max(1, round(note.pending / SENDS_PER_SECOND))
    text: list[str | Markup] = [
        bold(_("Sending the announcement: {done} of {total}").format(done=finished, total=total)),
        _report_lines(note),
    ]
    if note.send_from is not None:
        when = local(note.send_from)
        text.append(
            _("Waiting for the end of the quiet hours at {time}.").format(time=format_clock(when))
        )
    else:
        text.append(_("About {seconds} s to go.").format(seconds=seconds))
    stop = Button(_("⏹ Stop sending"), "announce_stop", str(note.announcement_id))
    return Reply(lines(text), buttons=((stop,),))


def _report_lines(note: ProgressNote) -> Markup:
    rows: list[str | Markup] = []
    platforms = sorted({platform for platform, _state in note.counts})
    for platform in platforms:
        shown = [
            f"{_(name)} {note.counts[(platform, state)]}"
            for state, name in STATE_NAMES.items()
            if note.counts[(platform, state)]
        ]
        waiting = note.counts[(platform, DeliveryState.PENDING)]
        if waiting:
            shown.insert(0, _("to go {count}").format(count=waiting))
        rows.append(f"{_(PLATFORM_NAMES.get(platform, platform))}: {', '.join(shown) or '0'}")
    for reason, count in note.failures.most_common(3):
        rows.append(_("failed ({count}): {reason}").format(count=count, reason=reason[:120]))
    if not rows:
        rows.append(_("Nobody has subscribed to announcements yet."))
    return lines(rows)
