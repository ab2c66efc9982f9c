"""Dispatch: unknown commands, roles, errors with reference numbers, groups, rate limits."""

import logging

import pytest
from sqlalchemy import select

from bot.core import ChatId, Platform, Reply, Request, UserError
from bot.dispatch import Dispatcher, RateLimiter
from bot.markup import to_plain
from bot.routing import Context, Router
from storage.models import Identity, Member, Partner, Subscription, Topic
from tests.helpers import Chat, Sessions, add_partner, assert_well_formed, stored


async def test_unknown_command_names_it_and_points_to_help(member: Chat) -> None:
    assert await member.send("/frobnicate") == (
        "Den Befehl /frobnicate kenne ich nicht. /help zeigt, was ich kann."
    )


async def test_an_unknown_command_full_of_html_stays_well_formed(member: Chat) -> None:
    reply = await member.reply("/<b>&amp;</a>" + "x" * 5000)
    assert_well_formed(reply.text)
    assert len(reply.text) < 300


async def test_text_without_a_command_gets_a_hint(member: Chat) -> None:
    assert await member.send("Hallo Bot") == (
        "Befehle beginnen mit einem Schrägstrich, zum Beispiel /meetings. /help zeigt alle."
    )


async def test_a_member_is_created_once_per_platform_identity(
    member: Chat, sessions: Sessions
) -> None:
    await member.send("/help")
    await member.send("/help")
    telegram = Chat(member.dispatcher, "member", platform=Platform.TELEGRAM)
    await telegram.send("/help")
    rows = await stored(sessions, select(Identity.platform, Identity.user_id))
    assert sorted(rows) == [("console", "member"), ("telegram", "member")]
    assert len(await stored(sessions, select(Member.id))) == 2


async def test_coordinators_are_recognised_by_platform_user_id_only(
    dispatcher: Dispatcher,
) -> None:
    dispatcher.coordinators = frozenset({(Platform.TELEGRAM, "123456789")})
    coordinator = Chat(dispatcher, "123456789", platform=Platform.TELEGRAM)
    same_name = Chat(dispatcher, "123456789", platform=Platform.MATRIX)
    assert (await coordinator.send("/help")).endswith("Ihre Rolle: Koordination.")
    assert (await same_name.send("/help")).endswith("Ihre Rolle: Mitglied.")


def boom_router() -> Router:
    router = Router("boom")

    @router.command("boom", help="fails", usage="/boom")
    async def boom(request: Request, ctx: Context) -> Reply:
        await add_partner(ctx.session, "Halb GmbH")
        ctx.session.add(Subscription(member_id=ctx.member.id, topic=Topic.TIPS))
        raise RuntimeError("database on fire")

    @router.command("refuse", help="refuses", usage="/refuse X")
    async def refuse(request: Request, ctx: Context) -> Reply:
        await add_partner(ctx.session, "Halb GmbH")
        raise UserError("Nein.")

    return router


async def test_an_unexpected_error_is_logged_with_a_reference_the_user_sees(
    dispatcher: Dispatcher, member: Chat, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher.include_routers(boom_router())
    text = await member.send("/boom")
    ref = text.split("(Ref.: ")[1].split(")")[0]
    assert text == (
        f"Entschuldigung, da ist bei mir etwas schiefgegangen (Ref.: {ref}). "
        "Bitte versuchen Sie es später noch einmal."
    )
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert ref in record.getMessage()
    assert record.exc_info is not None
    # Nothing of the failed unit of work is stored; the process goes on.
    assert await stored(sessions, select(Partner.id)) == []
    assert await stored(sessions, select(Subscription.topic)) == []
    assert (await member.send("/help")).startswith("Was ich kann")


async def test_a_user_error_rolls_back_and_shows_the_usage(
    dispatcher: Dispatcher, member: Chat, sessions: Sessions
) -> None:
    dispatcher.include_routers(boom_router())
    assert await member.send("/refuse") == "Nein.\nSo geht’s: /refuse X"
    assert await stored(sessions, select(Partner.id)) == []


async def test_registering_a_command_twice_is_refused(dispatcher: Dispatcher) -> None:
    with pytest.raises(ValueError, match="/boom is registered twice"):
        dispatcher.include_routers(boom_router(), boom_router())


async def test_in_groups_unknown_commands_get_no_answer(dispatcher: Dispatcher) -> None:
    group = Chat(dispatcher, "member", platform=Platform.TELEGRAM, is_group=True)
    assert await group.answer("/frobnicate") is None
    assert await group.answer("Guten Morgen zusammen") is None
    assert (await group.send("/meetings")) == "Zurzeit sind keine Treffen geplant."


async def test_a_flood_of_commands_is_cut_off_per_person(dispatcher: Dispatcher) -> None:
    dispatcher.rate_limiter = RateLimiter(limit=3, window=60)
    flooder = Chat(dispatcher, "flooder")
    for _ in range(3):
        await flooder.send("/help")
    assert await flooder.answer("/help") is None
    # Others are not affected.
    assert (await Chat(dispatcher, "calm").send("/help")).startswith("Was ich kann")


async def test_a_forged_or_outdated_button_gets_a_polite_answer(dispatcher: Dispatcher) -> None:
    chat = Chat(dispatcher, "member")
    request = Request(
        Platform.TELEGRAM, ChatId("c"), chat.sender, "no-such", "1 2", via_button=True
    )
    reply = await dispatcher.handle(request)
    assert reply is not None
    assert reply.is_error
    assert to_plain(reply.text) == (
        "Dieser Knopf funktioniert nicht mehr. Bitte senden Sie den Befehl noch einmal."
    )


async def test_errors_are_marked_as_meant_for_one_person(member: Chat) -> None:
    assert (await member.reply("/meeting x")).is_error
    assert (await member.reply("/invite x")).is_error
    assert not (await member.reply("/meetings")).is_error
