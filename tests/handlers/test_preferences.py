"""A member's settings: subscriptions and the reply language, stored before confirmed."""

import pytest
from sqlalchemy import select

from storage.models import Member, Subscription, Topic
from tests.helpers import Chat, Sessions, stored


async def topics(sessions: Sessions) -> set[Topic]:
    return {topic for (topic,) in await stored(sessions, select(Subscription.topic))}


async def test_subscribe_without_topic_means_announcements_and_reminders(
    member: Chat, sessions: Sessions
) -> None:
    text = await member.send("/subscribe")
    assert text.startswith("Abonniert.\n✅ Ankündigungen – Neuigkeiten der Koordination\n")
    assert await topics(sessions) == {Topic.ANNOUNCEMENTS, Topic.REMINDERS}
    # Subscribing again changes nothing.
    await member.send("/subscribe")
    assert await topics(sessions) == {Topic.ANNOUNCEMENTS, Topic.REMINDERS}


async def test_one_topic_in_either_language(member: Chat, sessions: Sessions) -> None:
    await member.send("/subscribe")
    text = await member.send("/unsubscribe erinnerungen")
    assert "▫️ Erinnerungen" in text
    assert await topics(sessions) == {Topic.ANNOUNCEMENTS}
    await member.send("/subscribe tips")
    assert await topics(sessions) == {Topic.ANNOUNCEMENTS, Topic.TIPS}
    await member.send("/unsubscribe")
    assert await topics(sessions) == set()


async def test_an_unknown_topic_changes_nothing(member: Chat, sessions: Sessions) -> None:
    await member.send("/subscribe")
    assert await member.send("/unsubscribe <script>") == (
        "Ein Thema „<script>“ gibt es nicht.\n"
        "So geht’s: /abbestellen [ankündigungen|erinnerungen|tipps]"
    )
    assert await topics(sessions) == {Topic.ANNOUNCEMENTS, Topic.REMINDERS}


async def test_language_is_stored_and_used_from_then_on(member: Chat, sessions: Sessions) -> None:
    assert await member.send("/language en") == "From now on I answer in English."
    assert await stored(sessions, select(Member.language)) == [("en",)]
    assert (await member.send("/help")).startswith("What I can do")
    assert await member.send("/language") == (
        "Your reply language is English.\nUsage: /language de|en"
    )
    assert await member.send("/sprache deutsch") == "Ab jetzt antworte ich auf Deutsch."
    assert await member.send("/language fr") == (
        "Ich spreche Deutsch (de) und Englisch (en).\nSo geht’s: /sprache de|en"
    )


@pytest.mark.parametrize(
    ("code", "greeting"), [("en-GB", "What I can do"), ("fr", "Was ich kann")]
)
async def test_first_language_comes_from_the_platform_if_supported(
    member: Chat, code: str, greeting: str
) -> None:
    newcomer = Chat(member.dispatcher, "newcomer", language_code=code)
    assert (await newcomer.send("/help")).startswith(greeting)
