"""Who attends, for coordinators: places and the waiting list, who answered what, as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from markupsafe import Markup

from bot.core import Attachment, Reply, Request, Role, UserError
from bot.i18n import N_, _, in_every_language, local, ngettext
from bot.markup import blocks, bold, lines
from bot.routing import Context, Router
from handlers.meeting_cards import find_meeting, meeting_card
from storage.attendance import Attendee, attendees, locked_meeting, set_capacity
from storage.exchange.values import MAX_CAPACITY
from storage.models import Answer, Meeting

router = Router("attendance")
# A CSV file Excel opens with its umlauts intact starts with a byte order mark.
CSV_ENCODING = "utf-8-sig"
# What /capacity takes instead of a number to lift the limit.
NO_LIMIT = N_("off")


@router.command(
    "attendees",
    help=N_("the attendee list of a meeting as a CSV file"),
    usage=N_("/attendees ID"),
    role=Role.COORDINATOR,
    names={"de": "teilnehmende"},
    group=False,
)
async def send_attendees(request: Request, ctx: Context) -> Reply:
    """Send who answered a meeting as a CSV file: name, partner, answer, when, waiting place."""
    meeting = (await find_meeting(ctx, request.args)).meeting
    found = await attendees(ctx.session, meeting.id)
    text = Markup.escape(
        ngettext("{count} answer to {title}.", "{count} answers to {title}.", len(found))
    ).format(count=len(found), title=bold(meeting.title))
    return Reply(text, attachments=(attendee_csv(meeting, found),))


@router.command(
    "capacity",
    help=N_("limit how many may attend a meeting; more go on a waiting list"),
    usage=N_("/capacity ID NUMBER|off"),
    role=Role.COORDINATOR,
    names={"de": "plaetze"},
)
async def limit_meeting(request: Request, ctx: Context) -> Reply:
    """Set or lift a meeting's capacity; a higher one gives places to those waiting."""
    words = request.words
    if len(words) != 2:
        raise UserError(_("Please give the meeting number and the number of places, or off."))
    capacity = _parse_capacity(words[1])
    meeting = await locked_meeting(ctx.session, (await find_meeting(ctx, words[0])).meeting.id)
    assert meeting is not None
    moved_up = await set_capacity(ctx.session, meeting, capacity, ctx.now)
    done = (
        _("{title} has no limit of places now.")
        if capacity is None
        else _("{title} has {capacity} places now.")
    )
    heading = Markup.escape(done).format(title=bold(meeting.title), capacity=capacity)
    told = ngettext(
        "{count} member moved up from the waiting list and is told so.",
        "{count} members moved up from the waiting list and are told so.",
        len(moved_up),
    ).format(count=len(moved_up))
    summary = await find_meeting(ctx, str(meeting.id))
    return Reply(
        blocks([lines([heading, told if moved_up else None]), meeting_card(summary, ctx.now)])
    )


def _parse_capacity(word: str) -> int | None:
    if word.casefold() in {w.casefold() for w in in_every_language(NO_LIMIT)} | {NO_LIMIT}:
        return None
    if not word.isdecimal() or not 0 < int(word) <= MAX_CAPACITY:
        raise UserError(
            _("The number of places must be a whole number from 1 to {limit}, or off.").format(
                limit=MAX_CAPACITY
            )
        )
    return int(word)


def _groups() -> dict[str, str]:
    return {
        "yes": _("Attending"),
        "maybe": _("Maybe"),
        "no": _("Not attending"),
        "waiting": _("Waiting list"),
    }


def _group_of(attendee: Attendee) -> str:
    return "waiting" if attendee.waiting_place is not None else attendee.answer.value


def _person(attendee: Attendee) -> Markup:
    name = attendee.name or _("(no name)")
    if attendee.waiting_place is not None:
        name = f"{attendee.waiting_place}. {name}"
    if attendee.partner:
        return Markup("• {} ({})").format(name, attendee.partner)
    return Markup("• {}").format(name)


def attendee_groups(attendees: Sequence[Attendee]) -> Markup | None:
    """Return who answered what, grouped yes / maybe / no / waiting list, or None if nobody."""
    if not attendees:
        return None
    parts: list[Markup | None] = []
    for group, heading in _groups().items():
        people = [_person(a) for a in attendees if _group_of(a) == group]
        if people:
            parts.append(lines([bold(f"{heading} ({len(people)})"), *people]))
    return Markup("\n").join(part for part in parts if part)


def attendee_csv(meeting: Meeting, attendees: Sequence[Attendee]) -> Attachment:
    """Return the attendee list as a CSV file, made in memory, in the reader's language."""
    answers = {
        Answer.YES: _("yes"),
        Answer.MAYBE: _("maybe"),
        Answer.NO: _("no"),
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("name"), _("partner"), _("answer"), _("answered at"), _("waiting place")])
    for attendee in attendees:
        writer.writerow(
            [
                attendee.name,
                attendee.partner or "",
                answers[attendee.answer],
                local(attendee.answered_at).strftime("%Y-%m-%d %H:%M"),
                attendee.waiting_place or "",
            ]
        )
    name = _("attendees-{id}.csv").format(id=meeting.id)
    return Attachment(name, "text/csv", buffer.getvalue().encode(CSV_ENCODING))
