"""Partners, and how a member becomes a partner representative with an invite code."""

import datetime as dt

import pytest
from sqlalchemy import select

from storage.models import Identity, InviteCode, Member, Partner
from tests.helpers import NOW, Chat, Sessions, stored


@pytest.fixture(autouse=True)
async def network(demo: None) -> None:
    """Every test here runs on the demo network."""


async def test_partners_in_order_of_joining(member: Chat) -> None:
    text = await member.send("/partners")
    assert text.startswith("Partner im Düsseldorfer Klimapakt (1/2)")
    assert "• WEIQIAO Germany GmbH – Textil und Aluminium, Partner seit Oktober 2022" in text


async def test_one_partner_by_part_of_its_name(member: Chat) -> None:
    text = await member.send("/partner weiqiao")
    assert text.startswith("WEIQIAO Germany GmbH\nTextil und Aluminium, Partner seit Oktober 2022")
    assert "Shandong Weiqiao Pioneering Group" in text


async def test_a_name_that_fits_several_partners_asks_for_more(member: Chat) -> None:
    text = await member.send("/partner Düsseldorf")
    assert text.startswith("„Düsseldorf“ passt auf mehrere Partner: ")
    assert await member.send("/partner Acme") == (
        "Kein Partner heißt „Acme“. /partners zeigt alle."
    )


async def test_invite_and_join_make_a_partner_representative(
    member: Chat, coordinator: Chat, sessions: Sessions
) -> None:
    text = await coordinator.send("/invite WEIQIAO")
    code = text.split("Einladungscode für WEIQIAO Germany GmbH: ")[1].split("\n")[0]
    assert len(code) == 9

    # Typed in lower case and without the dash, as people do.
    joined = await member.send(f"/join {code.replace('-', '').lower()}")
    assert joined == "Willkommen! Sie vertreten jetzt WEIQIAO Germany GmbH im Netzwerk."
    [(partner,)] = await stored(
        sessions,
        select(Partner.name)
        .join(Member, Member.partner_id == Partner.id)
        .join(Identity, Identity.member_id == Member.id)
        .where(Identity.user_id == "member"),
    )
    assert partner == "WEIQIAO Germany GmbH"
    assert "Ihre Rolle: Partnervertretung." in await member.send("/help")

    # One-time: the next person cannot use it.
    other = Chat(member.dispatcher, "someone-else")
    assert await other.send(f"/join {code}") == "Dieser Einladungscode wurde schon verwendet."


async def test_expired_and_unknown_codes_are_refused(
    member: Chat, coordinator: Chat, sessions: Sessions
) -> None:
    text = await coordinator.send("/invite IHK")
    code = text.split(": ")[1].split("\n")[0]
    async with sessions() as session:
        invite = await session.scalar(select(InviteCode).where(InviteCode.code == code))
        assert invite is not None
        invite.expires_at = NOW - dt.timedelta(seconds=1)
        await session.commit()
    assert await member.send(f"/join {code}") == (
        "Dieser Einladungscode ist abgelaufen. Bitte fragen Sie nach einem neuen."
    )
    assert await member.send("/join ABCD-EFGH") == (
        "Dieser Einladungscode ist ungültig. Bitte prüfen Sie ihn."
    )
    assert await member.send("/join " + "x" * 5000) == (
        "Bitte geben Sie den Einladungscode an, den Sie von der Koordination bekommen haben.\n"
        "So geht’s: /beitreten CODE"
    )


async def test_members_cannot_invite(member: Chat, sessions: Sessions) -> None:
    assert await member.send("/invite WEIQIAO") == (
        "/invite ist der Koordination des Netzwerks vorbehalten."
    )
    assert await stored(sessions, select(InviteCode.id)) == []


@pytest.mark.parametrize(
    "name", ["baeckerei", "Backerei", "BÄCKEREI", "Bäckereien", "hennes bäck"]
)
async def test_a_partner_is_found_as_people_type_german(member: Chat, name: str) -> None:
    text = await member.send(f"/partner {name}")
    assert text.startswith("Bäckerei Hennes GmbH\n")


async def test_umlaut_spellings_find_a_partner_in_the_middle_of_a_word(member: Chat) -> None:
    assert (await member.send("/partner brueckmann")).startswith("Metallbau Brückmann GmbH\n")
    assert (await member.send("/partner Lorick")).startswith("Druckhaus Lörick KG\n")


async def test_a_page_past_the_end_shows_the_last_page(member: Chat) -> None:
    last = await member.send("/partners #2")
    assert last.startswith("Partner im Düsseldorfer Klimapakt (2/2)")
    assert await member.send("/klimapartner #99") == last
