"""A member's own settings: reply language and subscriptions."""

from __future__ import annotations

from markupsafe import Markup

from bot import i18n
from bot.core import Reply, Request, UserError
from bot.i18n import N_, _, parse_choice
from bot.markup import bold, code, lines
from bot.routing import Context, Router
from storage.members import subscribe, subscriptions_of, unsubscribe
from storage.models import Topic

router = Router("preferences")
TOPIC_NAMES = {
    Topic.ANNOUNCEMENTS: N_("announcements"),
    Topic.REMINDERS: N_("reminders"),
    Topic.TIPS: N_("tips"),
}
TOPIC_HELP = {
    Topic.ANNOUNCEMENTS: N_("news from the coordinators"),
    Topic.REMINDERS: N_("reminders before meetings you attend"),
    Topic.TIPS: N_("new tips from the partners"),
}
# What a bare /subscribe means: the messages nearly everyone wants.
DEFAULT_TOPICS = (Topic.ANNOUNCEMENTS, Topic.REMINDERS)
LANGUAGE_NAMES = {"de": "Deutsch", "en": "English"}


@router.command(
    "subscribe",
    help=N_("get announcements and reminders"),
    usage=N_("/subscribe [announcements|reminders|tips]"),
    names={"de": "abonnieren"},
    group=False,
)
async def subscribe_topics(request: Request, ctx: Context) -> Reply:
    """Subscribe the member to one topic, or to announcements and reminders."""
    topics = _topics(request.args) or DEFAULT_TOPICS
    await subscribe(ctx.session, ctx.member.id, topics)
    return await _status(ctx, _("Subscribed."))


@router.command(
    "unsubscribe",
    help=N_("stop pushed messages"),
    usage=N_("/unsubscribe [announcements|reminders|tips]"),
    names={"de": "abbestellen"},
    group=False,
)
async def unsubscribe_topics(request: Request, ctx: Context) -> Reply:
    """Unsubscribe the member from one topic, or from all."""
    topics = _topics(request.args) or tuple(Topic)
    await unsubscribe(ctx.session, ctx.member.id, topics)
    return await _status(ctx, _("Unsubscribed."))


@router.command(
    "language",
    help=N_("choose the reply language"),
    usage=N_("/language de|en"),
    names={"de": "sprache"},
    group=False,
)
async def choose_language(request: Request, ctx: Context) -> Reply:
    """Set the member's reply language and answer in it."""
    choice = request.args.strip().casefold()
    if not choice:
        current = LANGUAGE_NAMES[i18n.current().language]
        raise UserError(_("Your reply language is {language}.").format(language=current))
    language = next(
        (tag for tag, name in LANGUAGE_NAMES.items() if choice in {tag, name.casefold()}),
        None,
    )
    if language is None:
        raise UserError(_("I speak German (de) and English (en)."))
    ctx.member.language = language
    with i18n.using(i18n.localizer(language, i18n.current().timezone)):
        return Reply(
            Markup.escape(_("From now on I answer in {language}.")).format(
                language=bold(LANGUAGE_NAMES[language])
            )
        )


def _topics(args: str) -> tuple[Topic, ...]:
    if not args.strip():
        return ()
    topic = parse_choice(args, TOPIC_NAMES)
    if topic is None:
        raise UserError(_("There is no topic “{topic}”.").format(topic=args.strip()[:40]))
    return (topic,)


async def _status(ctx: Context, headline: str) -> Reply:
    subscribed = await subscriptions_of(ctx.session, ctx.member.id)
    rows = [
        Markup("{} {} – {}").format(
            "✅" if topic in subscribed else "▫️", bold(_(TOPIC_NAMES[topic])), _(TOPIC_HELP[topic])
        )
        for topic in Topic
    ]
    return Reply(
        lines(
            [
                Markup.escape(headline),
                *rows,
                Markup.escape(_("Change with {subscribe} or {unsubscribe}.")).format(
                    subscribe=code(_("/subscribe TOPIC")),
                    unsubscribe=code(_("/unsubscribe TOPIC")),
                ),
            ]
        )
    )
