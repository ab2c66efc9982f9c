"""Welcome and help: each person sees the commands their role allows, named in their language."""

import re

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import App, telegram_menus
from bot.config import Config
from bot.core import Reply, Request
from bot.dispatch import Dispatcher
from bot.routing import Context, Router
from tests.helpers import Chat, Sessions


async def test_welcome_names_the_network(member: Chat) -> None:
    text = await member.send("/start")
    assert text.startswith("Willkommen beim Klimabot des Netzwerks „Düsseldorfer Klimapakt“!")
    assert "/treffen [vergangen] – die nächsten Netzwerktreffen" in text


async def test_help_lists_only_what_a_member_may_use(member: Chat) -> None:
    text = await member.send("/help")
    assert "/tipps [Suchwörter|Kategorie] – die CO2-Spartipps des Netzwerks durchsuchen" in text
    assert "/einladen" not in text
    assert text.endswith("Ihre Rolle: Mitglied.")


async def test_coordinators_see_their_commands(coordinator: Chat) -> None:
    text = await coordinator.send("/help")
    assert "/einladen PARTNER – einmaliger Einladungscode für die Leute eines Partners" in text
    assert text.endswith("Ihre Rolle: Koordination.")


async def test_help_in_english(member: Chat) -> None:
    await member.send("/language en")
    text = await member.send("/hilfe")
    assert "/meeting ID – one meeting in full" in text
    assert text.endswith("You are a member.")


async def test_german_help_shows_the_german_names(member: Chat) -> None:
    text = await member.send("/hilfe")
    for entry in (
        "/treffen [vergangen] – die nächsten Netzwerktreffen",
        "/termin NR – ",
        "/teilnehmen NR ja|nein|vielleicht – ",
        "/kalender [NR|neu] – ",
        "/tipps [Suchwörter|Kategorie] – ",
        "/tipp NR – ",
        "/klimapartner – ",
        "/partner NAME – ",
        "/abonnieren [ankündigungen|erinnerungen|tipps] – ",
        "/abbestellen [ankündigungen|erinnerungen|tipps] – ",
        "/sprache de|en – ",
        "/beitreten CODE – ",
        "/verbinden [CODE] – ",
        "/hilfe – ",
    ):
        assert entry in text
    assert "/meetings" not in text
    assert "/subscribe" not in text


async def test_english_help_shows_the_english_names(member: Chat) -> None:
    await member.send("/sprache en")
    text = await member.send("/help")
    assert "/meetings [past] – upcoming network meetings" in text
    assert "/subscribe [announcements|reminders|tips] – " in text
    assert "/treffen" not in text
    assert "/tipps" not in text


@pytest.mark.parametrize(
    ("german", "english"),
    [
        ("/abonnieren erinnerungen", "/subscribe erinnerungen"),
        ("/abbestellen", "/unsubscribe"),
        ("/klimapartner", "/partners"),
        ("/tipps", "/tips"),
        ("/tipp 1", "/tip 1"),
        ("/hilfe", "/help"),
        ("/beitreten", "/join"),
    ],
)
async def test_german_names_answer_like_the_english_ones(
    member: Chat, demo: None, german: str, english: str
) -> None:
    assert await member.send(german) == await member.send(english)


async def test_a_usage_answer_names_the_command_as_the_member_calls_it(member: Chat) -> None:
    assert (await member.send("/termin x")).endswith("So geht’s: /termin NR")
    await member.send("/sprache en")
    assert (await member.send("/termin x")).endswith("Usage: /meeting ID")


async def test_telegram_menus_use_each_languages_names(
    dispatcher: Dispatcher, engine: AsyncEngine, sessions: Sessions
) -> None:
    config = Config.model_validate({"coordinators": {"telegram": [42]}})
    menus = telegram_menus(App(config, engine, sessions, dispatcher))
    by_scope = {(menu.scope, menu.language): dict(menu.commands) for menu in menus}
    german, english = by_scope[("private", "de")], by_scope[("private", "en")]
    assert german["treffen"] == "die nächsten Netzwerktreffen"
    assert english["meetings"] == "upcoming network meetings"
    assert {"tipps", "klimapartner", "abonnieren", "sprache", "hilfe"} <= set(german)
    assert not {"meetings", "tips", "subscribe", "language", "help"} & set(german)
    assert {"meetings", "tips", "partners", "subscribe", "language", "help"} <= set(english)
    # The default menu is in the network's language.
    assert by_scope[("private", None)] == german
    assert "einladen" in by_scope[(42, "de")]
    assert "invite" in by_scope[(42, "en")]
    assert "beitreten" not in by_scope[("group", "de")]
    every_name = [name for menu in menus for name, _help in menu.commands]
    assert all(re.fullmatch(r"[a-z0-9_]{1,32}", name) for name in every_name)


def test_command_names_telegram_refuses_are_refused() -> None:
    router = Router("test")
    for name in ("Treffen", "tipps-liste", "zusagen!", "x" * 33, "kündigen"):
        with pytest.raises(ValueError, match="a command name is"):
            router.command("ok", help="", names={"de": name})
    with pytest.raises(ValueError, match="a command name is"):
        router.command("Meetings", help="")


def test_a_german_name_that_clashes_is_refused(dispatcher: Dispatcher) -> None:
    router = Router("clash")

    @router.command("partnerlist", help="", names={"de": "partner"})
    async def clash(request: Request, ctx: Context) -> Reply:
        raise NotImplementedError

    with pytest.raises(ValueError, match="/partner is registered twice"):
        dispatcher.include_routers(router)
