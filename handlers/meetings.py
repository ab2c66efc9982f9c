"""Network meetings: the list, one meeting in full, answers and calendar files."""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup

from bot.core import Button, Reply, Request, UserError
from bot.i18n import N_, _, format_when, parse_choice
from bot.markup import blocks, bold, code, italic, lines, link
from bot.routing import Context, Router
from handlers.arguments import parse_id
from handlers.paging import page_buttons, page_count, split_page
from storage.meetings import (
    MeetingSummary,
    UpcomingPage,
    answer_of,
    meeting_summary,
    set_answer,
    upcoming_meetings,
)
from storage.models import Answer, Meeting

router = Router("meetings")
PAGE_SIZE = 5
# How many meetings /meeting offers when it is sent without a number.
CHOICES = 5
ANSWER_WORDS = {Answer.YES: N_("yes"), Answer.NO: N_("no"), Answer.MAYBE: N_("maybe")}


@router.command(
    "meetings",
    help=N_("upcoming network meetings"),
    usage=N_("/meetings"),
    aliases=("termine",),
    names={"de": "treffen"},
)
async def list_meetings(request: Request, ctx: Context) -> Reply:
    """List the meetings that are not over yet, soonest first, with the member's answers."""
    _rest, page = split_page(request.args)
    upcoming = await _upcoming_page(ctx, page)
    if upcoming.total == 0:
        return Reply(Markup.escape(_("No meetings are planned at the moment.")))
    # A page past the end shows the last one.
    pages = page_count(upcoming.total, PAGE_SIZE)
    page = min(page, pages)
    if not upcoming.summaries:
        upcoming = await _upcoming_page(ctx, page)
    summaries = upcoming.summaries
    heading = bold(_("Upcoming meetings ({page}/{pages})").format(page=page, pages=pages))
    buttons = tuple(
        (
            Button(_("Details #{id}").format(id=s.meeting.id), "meeting", str(s.meeting.id)),
            Button(_("Attend #{id}").format(id=s.meeting.id), "rsvp", f"{s.meeting.id} yes"),
        )
        for s in summaries
    )
    paging = page_buttons("meetings", "", page, pages)
    cards = (lines([_meeting_card(s), _own_answer(s.mine)]) for s in summaries)
    return Reply(
        blocks([heading, *cards]),
        buttons + ((paging,) if paging else ()),
        edit_origin=request.via_button,
    )


async def _upcoming_page(ctx: Context, page: int) -> UpcomingPage:
    return await upcoming_meetings(
        ctx.session,
        ctx.now,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
        member_id=ctx.member.id,
    )


@router.command(
    "meeting", help=N_("one meeting in full"), usage=N_("/meeting ID"), names={"de": "termin"}
)
async def show_meeting(request: Request, ctx: Context) -> Reply:
    """Show one meeting with its agenda, the answers so far and the member's own."""
    if not request.args.strip():
        return await _choose_meeting(ctx)
    summary = await _summary(ctx, request.args)
    meeting = summary.meeting
    mine = await answer_of(ctx.session, meeting.id, ctx.member.id)
    text = blocks(
        [
            _meeting_card(summary),
            lines([bold(_("Agenda")), meeting.agenda]) if meeting.agenda else None,
            _own_answer(mine) if _open(meeting, ctx.now) else None,
        ]
    )
    return Reply(text, _meeting_buttons(meeting, ctx.now))


@router.command(
    "rsvp",
    help=N_("answer whether you attend a meeting"),
    usage=N_("/rsvp ID yes|no|maybe"),
    aliases=("zusage",),
    names={"de": "teilnehmen"},
)
async def answer_meeting(request: Request, ctx: Context) -> Reply:
    """Record whether the member attends a meeting."""
    words = request.words
    if len(words) != 2:
        raise UserError(_("Please give the meeting number and your answer."))
    answer = _parse_answer(words[1])
    summary = await _summary(ctx, words[0])
    meeting = summary.meeting
    if not _open(meeting, ctx.now):
        raise UserError(_("This meeting is over or cancelled."), show_usage=False)
    await set_answer(ctx.session, meeting.id, ctx.member.id, answer)
    summary = await _summary(ctx, str(meeting.id))
    thanks = {
        Answer.YES: _("Thank you! You attend {title}."),
        Answer.NO: _("Noted: you do not attend {title}."),
        Answer.MAYBE: _("Noted: you may attend {title}."),
    }[answer]
    return Reply(
        blocks([Markup.escape(thanks).format(title=bold(meeting.title)), _meeting_card(summary)]),
        _meeting_buttons(meeting, ctx.now),
    )


async def _summary(ctx: Context, arg: str) -> MeetingSummary:
    meeting_id = parse_id(arg, _("The meeting number must be a number, as shown by /meetings."))
    summary = await meeting_summary(ctx.session, meeting_id)
    if summary is None:
        raise UserError(
            _("There is no meeting #{id}. /meetings lists the meetings.").format(id=meeting_id),
            show_usage=False,
        )
    return summary


async def _choose_meeting(ctx: Context) -> Reply:
    """Ask which meeting: the next ones, each with a button to its details."""
    upcoming = await upcoming_meetings(ctx.session, ctx.now, limit=CHOICES)
    if not upcoming.summaries:
        return Reply(Markup.escape(_("No meetings are planned at the moment.")))
    entries = [
        Markup("• {} {} – {}").format(
            bold(s.meeting.title), code(f"#{s.meeting.id}"), format_when(s.meeting.starts_at)
        )
        for s in upcoming.summaries
    ]
    buttons = tuple(
        (Button(_("Details #{id}").format(id=s.meeting.id), "meeting", str(s.meeting.id)),)
        for s in upcoming.summaries
    )
    usage = next((c.usage_line() for c in ctx.commands if c.name == "meeting"), "/meeting")
    question = Markup.escape(_("Which meeting? Send {usage} or press a button.")).format(
        usage=code(usage)
    )
    return Reply(lines([question, *entries]), buttons)


def _parse_answer(word: str) -> Answer:
    answer = parse_choice(word, ANSWER_WORDS)
    if answer is None:
        raise UserError(_("Please answer yes, no or maybe."))
    return answer


def _open(meeting: Meeting, now: dt.datetime) -> bool:
    return meeting.cancelled_at is None and (meeting.ends_at or meeting.starts_at) > now


def _meeting_card(summary: MeetingSummary) -> Markup:
    meeting, answers = summary.meeting, summary.answers
    place = []
    if meeting.location:
        place.append(Markup("📍 {}").format(meeting.location))
    if meeting.online_url:
        place.append(Markup("💻 {}").format(link(meeting.online_url, _("online"))))
    state = italic(_("cancelled")) if meeting.cancelled_at else None
    counts = _("attending: {yes} · maybe: {maybe}").format(
        yes=answers[Answer.YES], maybe=answers[Answer.MAYBE]
    )
    return lines(
        [
            Markup("{} {}").format(bold(meeting.title), code(f"#{meeting.id}")),
            state,
            Markup("🗓 {}").format(format_when(meeting.starts_at, meeting.ends_at)),
            *place,
            Markup("👥 {}").format(counts),
        ]
    )


def _own_answer(answer: Answer | None) -> Markup:
    if answer is None:
        return Markup.escape(_("You have not answered yet."))
    label = {Answer.YES: _("attending"), Answer.NO: _("not attending"), Answer.MAYBE: _("maybe")}
    return Markup.escape(_("Your answer: {answer}")).format(answer=bold(label[answer]))


def answer_buttons(meeting: Meeting) -> tuple[Button, ...]:
    """Return the one-tap answers to a meeting: yes, maybe, no."""
    return tuple(
        Button(label, "rsvp", f"{meeting.id} {answer.value}")
        for answer, label in (
            (Answer.YES, _("✅ Yes")),
            (Answer.MAYBE, _("❔ Maybe")),
            (Answer.NO, _("❌ No")),
        )
    )


def _meeting_buttons(meeting: Meeting, now: dt.datetime) -> tuple[tuple[Button, ...], ...]:
    calendar = (Button(_("📅 Add to calendar"), "calendar", str(meeting.id)),)
    if not _open(meeting, now):
        return ()
    return (answer_buttons(meeting), calendar)
