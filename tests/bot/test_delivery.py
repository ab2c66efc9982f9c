"""The delivery worker: every row once, outcomes recorded, pauses kept, leases honoured."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

from sqlalchemy import select

from bot.app import App, delivery_worker
from bot.config import Config
from bot.core import (
    MessageRef,
    Platform,
    RateLimited,
    Recipient,
    Rejected,
    Reply,
    Unreachable,
)
from bot.delivery import DeliveryWorker, Pace
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from storage.models import Delivery, DeliveryState, Identity, PlatformPause
from storage.outbox import claim_due
from tests.helpers import NOW, Chat, Sessions, stored


class Platform_:
    """A chat platform that keeps what the worker sends and refuses what a test tells it to."""

    def __init__(self, platform: Platform = Platform.TELEGRAM) -> None:
        self.platform = platform
        self.sent: list[tuple[str, str, str]] = []  # chat, key, text
        self.edits: list[tuple[str, str]] = []  # message, text
        self.refuse: dict[str, Callable[[], Exception]] = {}
        self.held: list[float] = []

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to release."""

    def hold(self, seconds: float) -> None:
        self.held.append(seconds)

    async def send(self, recipient: Recipient, reply: Reply, *, key: str) -> MessageRef:
        if recipient.chat_id in self.refuse:
            raise self.refuse[recipient.chat_id]()
        self.sent.append((recipient.chat_id, key, to_plain(reply.text)))
        return MessageRef(str(len(self.sent)))

    async def edit(self, recipient: Recipient, message: MessageRef, reply: Reply) -> None:
        self.edits.append((message, to_plain(reply.text)))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def worker_for(
    dispatcher: Dispatcher,
    sessions: Sessions,
    platform: Platform_,
    clock: Clock,
    *others: Platform_,
) -> DeliveryWorker:
    app = App(Config(), sessions.kw["bind"], sessions, dispatcher)
    worker = delivery_worker(app, [platform, *others])
    worker.clock = clock
    worker.pace = Pace(in_flight=4, idle=0.01, backoff=10)
    return worker


async def broadcast(dispatcher: Dispatcher, coordinator: Chat, members: int) -> None:
    for number in range(members):
        await Chat(dispatcher, str(2000 + number), platform=Platform.TELEGRAM).send("/subscribe")
    await coordinator.send("/announce Netzwerktreffen am 29. März")
    await coordinator.press("Senden")


async def states(sessions: Sessions) -> dict[str, DeliveryState]:
    return dict(await stored(sessions, select(Delivery.chat_id, Delivery.state)))


async def test_every_subscriber_gets_the_announcement_once_and_the_report_follows(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await broadcast(dispatcher, coordinator, 10)
    platform, console, clock = Platform_(), Platform_(Platform.CONSOLE), Clock()
    worker = worker_for(dispatcher, sessions, platform, clock, console)
    await worker.send_due()
    await worker.send_due()  # nothing is due any more: nothing is sent again
    assert sorted(chat for chat, _key, _text in platform.sent) == [
        f"chat-{2000 + n}" for n in range(10)
    ]
    assert len({key for _chat, key, _text in platform.sent}) == 10
    assert platform.sent[0][2] == (
        "📣 Mitteilung der Koordination · Düsseldorfer Klimapakt\n\nNetzwerktreffen am 29. März"
    )
    assert set((await states(sessions)).values()) == {DeliveryState.DELIVERED}
    # The coordinator pressed Send on the console, where nothing can be edited: the report
    # comes as a message of its own, once everything is sent.
    assert [(chat, text) for chat, _key, text in console.sent] == [
        ("chat-coordinator", "Mitteilung gesendet: Zustellbericht\nTelegram: zugestellt 10")
    ]


async def test_a_report_an_earlier_process_did_not_show_comes_at_the_next_start(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await broadcast(dispatcher, coordinator, 2)
    platform, console, clock = Platform_(), Platform_(Platform.CONSOLE), Clock()
    stopped = worker_for(dispatcher, sessions, platform, clock, console)
    stopped.progress = None  # it sent everything, then stopped before showing the report
    await stopped.send_due()
    assert console.sent == []
    started = worker_for(dispatcher, sessions, platform, clock, console)
    started.stop()
    await started.run()
    assert [text for _chat, _key, text in console.sent] == [
        "Mitteilung gesendet: Zustellbericht\nTelegram: zugestellt 2"
    ]


async def test_members_get_it_in_their_language(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    english = Chat(dispatcher, "3000", platform=Platform.TELEGRAM, language_code="en")
    await english.send("/subscribe")
    await coordinator.send("/announce Hello")
    await coordinator.press("Senden")
    platform = Platform_()
    await worker_for(dispatcher, sessions, platform, Clock()).send_due()
    assert platform.sent[0][2].startswith("📣 From the coordination of Düsseldorfer Klimapakt")


async def test_outcomes_blocked_refused_and_passing_failures(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await broadcast(dispatcher, coordinator, 3)
    platform, clock = Platform_(), Clock()
    platform.refuse["chat-2000"] = lambda: Unreachable("Forbidden: bot was blocked by the user")
    platform.refuse["chat-2001"] = lambda: Rejected("Bad Request: message is too long")
    platform.refuse["chat-2002"] = lambda: ConnectionError("connection reset")
    worker = worker_for(dispatcher, sessions, platform, clock)
    await worker.send_due()
    assert await states(sessions) == {
        "chat-2000": DeliveryState.UNREACHABLE,
        "chat-2001": DeliveryState.FAILED,
        "chat-2002": DeliveryState.PENDING,
    }
    blocked = await stored(
        sessions, select(Identity.unreachable_since).where(Identity.user_id == "2000")
    )
    assert blocked == [(NOW,)]
    # The passing failure is tried again after a growing pause, then given up.
    for _attempt in range(4):
        await worker.send_due()
        assert (await states(sessions))["chat-2002"] is DeliveryState.PENDING
        clock.now += dt.timedelta(seconds=10 * 2**5)
    await worker.send_due()
    assert (await states(sessions))["chat-2002"] is DeliveryState.FAILED
    error = await stored(sessions, select(Delivery.error).where(Delivery.chat_id == "chat-2002"))
    assert error == [("ConnectionError: connection reset",)]
    listed = await coordinator.send("/announcements")
    assert "Telegram: nicht erreichbar 1, fehlgeschlagen 2" in listed
    assert "fehlgeschlagen (1): Bad Request: message is too long" in listed


async def test_a_rate_limit_pauses_the_platform_in_the_database(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await broadcast(dispatcher, coordinator, 2)
    platform, clock = Platform_(), Clock()
    platform.refuse["chat-2000"] = lambda: RateLimited(3600)
    worker = worker_for(dispatcher, sessions, platform, clock)
    worker.pace = Pace(in_flight=1, idle=0.01)
    await worker.send_due()
    assert await stored(sessions, select(PlatformPause.until)) == [(NOW + dt.timedelta(hours=1),)]
    # A worker started afterwards (a restart) keeps to the stored pause: nothing is sent.
    del platform.refuse["chat-2000"]
    later = worker_for(dispatcher, sessions, platform, clock)
    await later._keep_stored_pauses()  # replies too wait for what remains of it
    assert platform.held == [3600.0]
    clock.now += dt.timedelta(minutes=59)
    await later.send_due()
    assert platform.sent == []
    clock.now += dt.timedelta(minutes=1)
    await later.send_due()
    assert sorted(chat for chat, _key, _text in platform.sent) == ["chat-2000", "chat-2001"]


async def test_rows_held_by_a_live_worker_are_left_alone_and_a_dead_ones_are_taken_over(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await broadcast(dispatcher, coordinator, 2)
    async with sessions() as session:
        taken = await claim_due(
            session, "telegram", "otherhost:1", NOW, lease=dt.timedelta(minutes=1), limit=1
        )
        gone = await claim_due(
            session, "telegram", "thishost:999999999", NOW, lease=dt.timedelta(minutes=1), limit=1
        )
        await session.commit()
    platform, clock = Platform_(), Clock()
    worker = worker_for(dispatcher, sessions, platform, clock)
    worker.owner = "thishost:1"
    await worker._release_leases_of_the_dead()
    await worker.send_due()
    # The row of the process that no longer exists on this host is sent; the other waits.
    assert [chat for chat, _key, _text in platform.sent] == [gone[0].chat_id]
    clock.now += dt.timedelta(minutes=1)
    await worker.send_due()
    assert sorted(chat for chat, _key, _text in platform.sent) == sorted(
        [gone[0].chat_id, taken[0].chat_id]
    )


async def test_stop_lets_the_sends_in_flight_finish(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await broadcast(dispatcher, coordinator, 3)
    platform, clock = Platform_(), Clock()
    release = asyncio.Event()
    started = asyncio.Event()
    original = platform.send

    async def slow_send(recipient: Recipient, reply: Reply, *, key: str) -> MessageRef:
        started.set()
        await release.wait()
        return await original(recipient, reply, key=key)

    platform.send = slow_send  # type: ignore[method-assign]
    worker = worker_for(dispatcher, sessions, platform, clock)
    worker.pace = Pace(in_flight=1, idle=0.01)
    task = asyncio.create_task(worker.run())
    await started.wait()
    worker.stop()
    release.set()
    await task
    assert len(platform.sent) == 1
    assert sorted((await states(sessions)).values()) == [
        DeliveryState.DELIVERED,
        DeliveryState.PENDING,
        DeliveryState.PENDING,
    ]


async def test_matrix_keeps_few_pushes_in_flight_so_replies_do_not_queue_behind_many(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    for number in range(12):
        member = Chat(dispatcher, f"@mitglied{number}:example.org", platform=Platform.MATRIX)
        await member.send("/subscribe")
    await coordinator.send("/announce Netzwerktreffen am 29. März")
    await coordinator.press("Senden")
    matrix, clock = Platform_(Platform.MATRIX), Clock()
    going, most = 0, 0
    original = matrix.send
    everyone = asyncio.Event()

    async def send(recipient: Recipient, reply: Reply, *, key: str) -> MessageRef:
        nonlocal going, most
        going += 1
        most = max(most, going)
        await asyncio.sleep(0.01)  # the homeserver at work
        going -= 1
        sent = await original(recipient, reply, key=key)
        if len(matrix.sent) == 12:
            everyone.set()
        return sent

    matrix.send = send  # type: ignore[method-assign]
    worker = worker_for(dispatcher, sessions, matrix, clock)
    worker.pace = Pace(in_flight=16, idle=0.01, warmup=0.0)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(everyone.wait(), 10)
    worker.stop()
    await task  # the last sends are recorded before it returns
    assert len(matrix.sent) == 12
    assert set((await states(sessions)).values()) == {DeliveryState.DELIVERED}
    assert most == 2  # Pace().matrix_in_flight, although in_flight allows 16
