"""Dispatch: unknown commands, roles, errors with reference numbers, groups, rate limits."""

import logging

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.allowance import Allowance, Verdict
from bot.core import ChatId, Platform, Reply, Request, UserError
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from bot.routing import Context, Router
from storage.models import Identity, Member, Partner, Subscription, Topic
from tests.helpers import Chat, Sessions, add_partner, add_tip, assert_well_formed, stored


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


class Clock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_flood_gets_one_notice_then_quiet_then_answers_again(
    dispatcher: Dispatcher,
) -> None:
    clock = Clock()
    dispatcher.allowance = Allowance(limit=3, window=60, clock=clock)
    flooder = Chat(dispatcher, "flooder", platform=Platform.TELEGRAM)
    for _ in range(3):
        await flooder.send("/help")
        clock.now += 10
    notice = await flooder.reply("/help")
    assert notice.is_error
    # The first command leaves the window 60 s after it came, 30 s after now.
    assert to_plain(notice.text) == (
        "Sie senden Befehle schneller, als ich antworten kann. In 30 Sekunden antworte ich wieder."
    )
    for _ in range(5):  # refused attempts are not counted and do not extend the wait
        clock.now += 5
        assert await flooder.answer("/help") is None
    clock.now += 5.5  # 60.5 s after the first command
    assert (await flooder.send("/help")).startswith("Was ich kann")
    # Others were never affected.
    calm = Chat(dispatcher, "calm", platform=Platform.TELEGRAM)
    assert (await calm.send("/help")).startswith("Was ich kann")


async def test_the_notice_speaks_the_members_language(dispatcher: Dispatcher) -> None:
    dispatcher.allowance = Allowance(limit=1, window=60, clock=Clock())
    english = Chat(dispatcher, "en", platform=Platform.MATRIX, language_code="en")
    await english.send("/help")
    assert (await english.send("/help")).startswith("You are sending commands faster")


async def test_the_console_is_never_limited(dispatcher: Dispatcher) -> None:
    dispatcher.allowance = Allowance(limit=2, window=60, clock=Clock())
    operator = Chat(dispatcher, "local")
    for _ in range(25):
        assert (await operator.send("/help")).startswith("Was ich kann")


async def test_turning_pages_counts_a_quarter_of_a_command(
    dispatcher: Dispatcher, session: AsyncSession
) -> None:
    partner = await add_partner(session)
    for number in range(12):
        await add_tip(session, partner, f"Tipp {number}")
    await session.commit()
    dispatcher.allowance = Allowance(limit=2, window=60, clock=Clock())
    reader = Chat(dispatcher, "reader", platform=Platform.TELEGRAM)
    await reader.send("/tips")
    for arrow in "▶◀▶◀":  # four page taps weigh one command
        assert not (await reader.press(arrow)).is_error
    assert (await reader.reply("/tips")).is_error


def test_the_allowance_forgets_people_beyond_its_size() -> None:
    clock = Clock()
    allowance = Allowance(limit=1, window=60, people=100, clock=clock)
    for person in range(1000):
        allowance.check(person)
    assert len(allowance) == 100
    clock.now += 61
    assert allowance.check(999) == (Verdict.ANSWER, 0.0)


async def test_a_database_failure_in_the_member_lookup_is_answered(
    dispatcher: Dispatcher, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with engine.begin() as connection:
        await connection.exec_driver_sql("DROP TABLE identities")
    text = await Chat(dispatcher, "member").send("/meetings")
    ref = text.split("(Ref.: ")[1].split(")")[0]
    assert text.startswith("Entschuldigung, da ist bei mir etwas schiefgegangen")
    assert f"/meetings failed (ref: {ref})" in caplog.text


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
