"""The unit-of-work policy of `open_app`: reads never wait for a writer; writes wait, then fail
politely; the process's own writers take turns."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from bot.app import App, open_app
from bot.config import Config, Database
from storage.models import Answer, Identity, Rsvp, Subscription, Topic
from tests.helpers import NOW, Chat, add_meeting, stored

OpenApp = Callable[..., Awaitable[App]]


class WriteLock:
    """Another process's write lock: `BEGIN IMMEDIATE` on a connection of its own."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.connection = sqlite3.connect(database, isolation_level=None, timeout=0)

    def take(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")
        # Like an import: something written, not yet committed.
        self.connection.execute(
            "INSERT INTO partners (name, sector, joined, created_at) "
            "VALUES ('Import GmbH', '', '2022-10-01', '2026-11-25 10:00:00')"
        )

    def release(self) -> None:
        self.connection.execute("COMMIT")

    def held(self) -> bool:
        """Tell whether a writer would have to wait right now."""
        probe = sqlite3.connect(self.database, isolation_level=None, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
        return False

    def close(self) -> None:
        """Give up: roll back what was written and let go of the lock."""
        self.connection.close()


@pytest.fixture
async def make_app(tmp_path: Path) -> AsyncIterator[OpenApp]:
    """Open the bot's app on a new database file, as `klimabot run` does."""
    apps: list[App] = []

    async def make(busy_timeout: float = 30) -> App:
        url = f"sqlite+aiosqlite:///{tmp_path / 'klimabot.db'}"
        app = await open_app(Config(database=Database(url=url, busy_timeout=busy_timeout)))
        app.dispatcher.clock = lambda: NOW
        async with app.sessions() as session:
            await add_meeting(session, "2. Netzwerktreffen", NOW + dt.timedelta(days=7))
            await session.commit()
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[WriteLock]:
    lock = WriteLock(tmp_path / "klimabot.db")
    yield lock
    lock.close()


def began_writing(app: App) -> asyncio.Event:
    """An event set when a unit of work takes the writers' connection to ask for the lock."""
    began = asyncio.Event()

    def mark(*_args: Any) -> None:
        began.set()

    event.listen(app.engine.sync_engine.pool, "checkout", mark)
    return began


async def test_meetings_are_answered_while_another_process_holds_the_write_lock(
    make_app: OpenApp, lock: WriteLock
) -> None:
    app = await make_app()
    member = Chat(app.dispatcher, "anna")
    await member.send("/help")  # the first contact stores the member
    lock.take()
    assert "2. Netzwerktreffen" in await member.send("/meetings")
    assert "2. Netzwerktreffen" in await member.send("/meeting 1")
    assert lock.held()


async def test_a_member_back_after_a_while_is_answered_and_noted_beside_the_lock(
    make_app: OpenApp, lock: WriteLock
) -> None:
    app = await make_app()
    member = Chat(app.dispatcher, "anna")
    await member.send("/help")
    later = NOW + dt.timedelta(hours=1)
    app.dispatcher.clock = lambda: later
    lock.take()
    # Where pushes go is noted beside the answer, so the read does not wait for the lock.
    assert "2. Netzwerktreffen" in await member.send("/meetings")
    assert lock.held()
    readers = app.dispatcher.readers
    assert readers is not None
    assert await stored(readers, select(Identity.last_seen_at)) == [(NOW,)]
    lock.release()
    await app.dispatcher.settled()
    assert await stored(readers, select(Identity.last_seen_at)) == [(later,)]


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("/subscribe", "Abonniert."),
        ("/rsvp 1 yes", "Danke! Sie nehmen an 2. Netzwerktreffen teil."),
    ],
)
async def test_a_write_waits_for_the_lock_and_succeeds_once_it_is_released(
    make_app: OpenApp, lock: WriteLock, line: str, answer: str
) -> None:
    app = await make_app()
    writer, reader = Chat(app.dispatcher, "anna"), Chat(app.dispatcher, "ben")
    await writer.send("/help")
    await reader.send("/help")
    began = began_writing(app)
    lock.take()
    waiting = asyncio.create_task(writer.send(line))
    await began.wait()
    # A unit waiting for the lock does not keep this process's readers waiting.
    assert "2. Netzwerktreffen" in await reader.send("/meetings")
    assert not waiting.done()
    lock.release()
    assert (await waiting).startswith(answer)
    subscriptions = await stored(app.sessions, select(Subscription.topic))
    rsvps = await stored(app.sessions, select(Rsvp.answer))
    if line == "/subscribe":
        assert sorted(topic for (topic,) in subscriptions) == [
            Topic.ANNOUNCEMENTS,
            Topic.REMINDERS,
        ]
    else:
        assert rsvps == [(Answer.YES,)]


async def test_a_write_that_outwaits_the_busy_timeout_is_asked_to_try_again(
    make_app: OpenApp, lock: WriteLock, caplog: pytest.LogCaptureFixture
) -> None:
    app = await make_app(busy_timeout=0.2)
    member = Chat(app.dispatcher, "anna")
    await member.send("/help")
    lock.take()
    for chat, line in ((member, "/subscribe"), (Chat(app.dispatcher, "new"), "/meetings")):
        text = await chat.send(line)
        ref = text.split("(Ref.: ")[1].split(")")[0]
        assert text == (
            f"Entschuldigung, da ist bei mir etwas schiefgegangen (Ref.: {ref}). "
            "Bitte versuchen Sie es später noch einmal."
        )
        assert f"failed (ref: {ref})" in caplog.text
    lock.close()  # the other process gives up: nothing of it is stored either
    # Nothing half-stored: no subscription, and the new member (a write) is not there.
    assert await stored(app.sessions, select(Subscription.topic)) == []
    assert await stored(app.sessions, select(Identity.user_id)) == [("anna",)]
    assert (await member.send("/subscribe")).startswith("Abonniert.")


async def test_the_processs_own_writers_take_turns(make_app: OpenApp) -> None:
    app = await make_app()
    members = [Chat(app.dispatcher, f"member-{number}") for number in range(20)]
    # Each first contact and each answer writes; they all meet at once.
    replies = await asyncio.gather(*(member.send("/rsvp 1 maybe") for member in members))
    assert all(reply.startswith("Notiert: Sie nehmen vielleicht") for reply in replies)
    assert await stored(app.sessions, select(func.count()).select_from(Rsvp)) == [(20,)]


async def test_a_new_member_waits_like_any_writer(
    make_app: OpenApp, lock: WriteLock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    app = await make_app()
    began = began_writing(app)
    lock.take()
    first_contact = asyncio.create_task(Chat(app.dispatcher, "new").send("/meetings"))
    await began.wait()
    lock.release()
    assert "2. Netzwerktreffen" in await first_contact
    assert ("new",) in await stored(app.sessions, select(Identity.user_id))
    assert caplog.records == []
