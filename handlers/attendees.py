"""Who answered a meeting, as coordinators see it: grouped in a reply, or as a CSV file."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from markupsafe import Markup

from bot.core import Attachment
from bot.i18n import _, local
from bot.markup import bold, lines
from storage.attendance import Attendee
from storage.models import Answer, Meeting

# A CSV file Excel opens with its umlauts intact starts with a byte order mark.
CSV_ENCODING = "utf-8-sig"


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
