"""Linking a member's Telegram and Matrix accounts into one member."""

import datetime as dt

from sqlalchemy import func, select

from bot.core import Platform
from bot.dispatch import Dispatcher
from storage.models import Identity, LinkCode, Member, Rsvp, Subscription, Topic
from tests.helpers import NOW, Chat, Sessions, add_meeting, stored


async def test_linking_makes_one_member_with_the_choices_of_both(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    async with sessions() as session:
        await add_meeting(session, "Treffen A", NOW + dt.timedelta(days=3))
        await add_meeting(session, "Treffen B", NOW + dt.timedelta(days=9))
        await session.commit()
    telegram = Chat(dispatcher, "4242", platform=Platform.TELEGRAM)
    matrix = Chat(dispatcher, "@anna:example.org", platform=Platform.MATRIX)
    await telegram.send("/language en")
    await telegram.send("/rsvp 1 yes")
    await matrix.send("/subscribe tipps")
    await matrix.send("/rsvp 1 no")
    await matrix.send("/rsvp 2 maybe")

    shown = await telegram.send("/link")
    code = shown.split("Your link code: ")[1].split("\n")[0]
    assert await matrix.send(f"/link {code.lower()}") == (
        "Verbunden: Ihre Abos, Antworten und Ihre Sprache gelten jetzt auf beiden Konten."
    )

    assert await stored(sessions, select(func.count()).select_from(Member)) == [(1,)]
    assert sorted(await stored(sessions, select(Identity.platform))) == [
        ("matrix",),
        ("telegram",),
    ]
    assert await stored(sessions, select(Subscription.topic)) == [(Topic.TIPS,)]
    # Where both answered, the account that made the code keeps its answer.
    assert sorted(await stored(sessions, select(Rsvp.meeting_id, Rsvp.answer))) == [
        (1, "yes"),
        (2, "maybe"),
    ]
    # The language follows the person to Matrix.
    assert (await matrix.send("/help")).startswith("What I can do")


async def test_codes_are_one_time_and_expire(dispatcher: Dispatcher, sessions: Sessions) -> None:
    telegram = Chat(dispatcher, "4243", platform=Platform.TELEGRAM)
    matrix = Chat(dispatcher, "@ben:example.org", platform=Platform.MATRIX)
    code = (await telegram.send("/link")).split("Verbindungscode: ")[1].split("\n")[0]
    assert await telegram.send(f"/link {code}") == "Dieses Konto ist schon verbunden."
    async with sessions() as session:
        link = await session.scalar(select(LinkCode))
        assert link is not None
        link.expires_at = NOW - dt.timedelta(seconds=1)
        await session.commit()
    assert await matrix.send(f"/link {code}") == (
        "Dieser Verbindungscode ist abgelaufen. Senden Sie /link noch einmal."
    )
    assert await matrix.send("/link XXXX-YYYY") == (
        "Dieser Verbindungscode ist ungültig. Bitte prüfen Sie ihn."
    )
    assert await stored(sessions, select(func.count()).select_from(Member)) == [(2,)]


async def test_linking_a_new_account_without_any_choices(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    telegram = Chat(dispatcher, "4244", platform=Platform.TELEGRAM)
    matrix = Chat(dispatcher, "@neu:example.org", platform=Platform.MATRIX)
    await matrix.send("/start")
    code = (await telegram.send("/link")).split("Verbindungscode: ")[1].split("\n")[0]
    assert (await matrix.send(f"/link {code}")).startswith("Verbunden:")
    assert await stored(sessions, select(func.count()).select_from(Member)) == [(1,)]
