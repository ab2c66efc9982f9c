"""Welcome and help: each person sees the commands their role allows."""

from tests.helpers import Chat


async def test_welcome_names_the_network(member: Chat) -> None:
    text = await member.send("/start")
    assert text.startswith("Willkommen beim Klimabot des Netzwerks „Düsseldorfer Klimapakt“!")
    assert "/meetings – die nächsten Netzwerktreffen" in text


async def test_help_lists_only_what_a_member_may_use(member: Chat) -> None:
    text = await member.send("/help")
    assert "/tips [Suchwörter|Kategorie] – die CO2-Spartipps des Netzwerks durchsuchen" in text
    assert "/invite" not in text
    assert text.endswith("Ihre Rolle: Mitglied.")


async def test_coordinators_see_their_commands(coordinator: Chat) -> None:
    text = await coordinator.send("/help")
    assert "/invite PARTNER – einmaliger Einladungscode für die Leute eines Partners" in text
    assert text.endswith("Ihre Rolle: Koordination.")


async def test_help_in_english(member: Chat) -> None:
    await member.send("/language en")
    text = await member.send("/hilfe")
    assert "/meeting ID – one meeting in full" in text
    assert text.endswith("You are a member.")
