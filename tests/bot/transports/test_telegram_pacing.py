"""Pacing: the published limits hold, one chat's flood delays no other, a 429 stops the bot.

The tests run in an event loop with a virtual clock that jumps to the next timer whenever
nothing else is ready, so every slot time is exact and no test waits for real.
"""

import asyncio
import datetime as dt
import itertools
import os
import random
import selectors
import subprocess
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from telegram.error import Forbidden, NetworkError, RetryAfter

from bot.transports.telegram_pacing import Limits, Priority, SendPacer

OVERALL = Limits().overall  # 1 / 30 s
PRIVATE = Limits().private_chat  # 1.1 s
GROUP = Limits().group_chat  # 3.3 s
T = TypeVar("T")


class JumpingSelector(selectors.SelectSelector):
    """A selector that, instead of blocking until the next timer, moves the clock to it."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        """Return what is ready now; with nothing ready, let the time pass at once."""
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise RuntimeError("nothing is ready and no timer is set: the test would hang")
        self.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on the selector's virtual clock."""

    def __init__(self) -> None:
        self.selector = JumpingSelector()
        super().__init__(self.selector)

    def time(self) -> float:
        """Return the virtual time in seconds since the loop began."""
        return self.selector.now


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine in a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.close()


def pacer(limits: Limits | None = None) -> SendPacer:
    """A pacer on the running loop's clock."""
    return SendPacer(limits, clock=asyncio.get_running_loop().time)


class Recorder:
    """A stand-in for the HTTP call: records when each request went out, and to whom."""

    def __init__(self, failures: list[Exception] | None = None, takes: float = 0.0) -> None:
        self.sent: list[tuple[float, Any]] = []
        self.failures = failures or []
        self.takes = takes  # seconds until Telegram answers

    async def __call__(self, chat_id: Any) -> dict[str, Any]:
        self.sent.append((asyncio.get_running_loop().time(), chat_id))
        await asyncio.sleep(self.takes)
        if self.failures:
            raise self.failures.pop(0)
        return {"ok": True}

    def times(self, chat_id: Any = None) -> list[float]:
        """Return when the requests (to one chat, or all) went out."""
        return [at for at, chat in self.sent if chat_id is None or chat == chat_id]


async def send(
    pacer: SendPacer,
    recorder: Recorder,
    chat_id: Any,
    method: str = "sendMessage",
    priority: Priority | None = None,
) -> Any:
    return await pacer.process_request(
        recorder, (chat_id,), {}, method, {"chat_id": chat_id}, priority
    )


def most_in_any_window(times: list[float], window: float) -> int:
    """Return the most of the times that fall into any half-open window of that length."""
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_one_private_chat_gets_one_message_in_each_interval() -> None:
    async def main() -> list[float]:
        paced, recorder = pacer(), Recorder()
        await asyncio.gather(*(send(paced, recorder, 42) for _ in range(4)))
        return recorder.times()

    assert run(main()) == pytest.approx([0, PRIVATE, 2 * PRIVATE, 3 * PRIVATE])


def test_a_chats_interval_counts_from_telegrams_answer() -> None:
    async def main() -> Recorder:
        paced, recorder = pacer(), Recorder(takes=0.5)
        chats = (42, 42, 7)
        await asyncio.gather(*(send(paced, recorder, chat) for chat in chats))
        return recorder

    recorder = run(main())
    # The first message may have arrived only when answered, so the second waits from then.
    assert recorder.times(42) == pytest.approx([0.0, 0.5 + PRIVATE])
    # Another chat does not wait for that answer, only for the next overall slot.
    assert recorder.times(7) == pytest.approx([OVERALL])


def test_a_group_gets_at_most_twenty_messages_a_minute() -> None:
    async def main() -> list[float]:
        paced, recorder = pacer(), Recorder()
        await asyncio.gather(*(send(paced, recorder, -100_500) for _ in range(25)))
        return recorder.times()

    times = run(main())
    assert times == pytest.approx([n * GROUP for n in range(25)])
    assert most_in_any_window(times, 60.0) <= 20


def test_the_overall_rate_holds_across_chats() -> None:
    async def main() -> list[float]:
        paced, recorder = pacer(), Recorder()
        await asyncio.gather(*(send(paced, recorder, chat) for chat in range(1, 101)))
        return recorder.times()

    times = run(main())
    assert times == pytest.approx([n * OVERALL for n in range(100)])
    assert most_in_any_window(times, 1.0) <= 30


def test_no_second_sees_more_arrive_than_the_limit_however_slow_the_answers() -> None:
    async def main() -> list[float]:
        paced, recorder = pacer(), Recorder(takes=0.5)
        await asyncio.gather(*(send(paced, recorder, chat) for chat in range(1, 41)))
        return recorder.times()

    times = run(main())
    # A message may arrive any time until it is answered, half a second after it went; so
    # the 31st goes only a second after the first was answered, and so on.
    assert times[:30] == pytest.approx([n * OVERALL for n in range(30)])
    assert times[30:] == pytest.approx([1.5 + n * OVERALL for n in range(10)])


class JitteryTelegram:
    """Requests that travel a random time there and back, fixed by the seed; notes arrivals."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.arrived: list[float] = []

    async def __call__(self, chat_id: Any) -> dict[str, Any]:
        there, back = self.random.uniform(0.0, 0.3), self.random.uniform(0.0, 0.3)
        await asyncio.sleep(there)
        self.arrived.append(asyncio.get_running_loop().time())
        await asyncio.sleep(back)
        return {"ok": True}


@pytest.mark.parametrize("seed", range(5))
def test_no_second_sees_more_arrive_than_the_limit_however_the_requests_travel(
    seed: int,
) -> None:
    async def main() -> list[float]:
        paced, telegram = pacer(), JitteryTelegram(seed)
        await asyncio.gather(
            *(
                paced.process_request(
                    telegram, (chat,), {}, "sendMessage", {"chat_id": chat}, None
                )
                for chat in range(1, 301)
            )
        )
        return telegram.arrived

    arrived = run(main())
    assert len(arrived) == 300
    # As Telegram counts: by the time each message arrived, in any one-second window.
    assert most_in_any_window(arrived, 1.0) <= 30


def test_one_persons_flood_never_delays_another_persons_answer() -> None:
    async def main() -> Recorder:
        paced, recorder = pacer(), Recorder()
        flood = [asyncio.create_task(send(paced, recorder, 1)) for _ in range(35)]
        await asyncio.sleep(5.0)  # A's replies are going out, one a second
        await send(paced, recorder, 2)  # B asks, behind 30 of A's replies
        await asyncio.gather(*flood)
        return recorder

    recorder = run(main())
    assert recorder.times(1) == pytest.approx([n * PRIVATE for n in range(35)])
    [answered] = recorder.times(2)
    # B's answer goes at once: A's queue holds one of the bot's slots at a time, at most.
    assert answered == pytest.approx(5.0)
    assert most_in_any_window(recorder.times(), 1.0) <= 30


def test_many_floods_share_the_overall_slots_fairly() -> None:
    async def main() -> Recorder:
        paced, recorder = pacer(), Recorder()
        floods = [send(paced, recorder, chat) for chat in range(1, 41) for _ in range(3)]
        await asyncio.gather(*floods)
        return recorder

    recorder = run(main())
    # Each chat's first message is in the first round of 40 slots, not behind another's.
    assert max(recorder.times(chat)[0] for chat in range(1, 41)) == pytest.approx(39 * OVERALL)
    for chat in range(1, 41):
        assert all(b - a >= PRIVATE - 1e-9 for a, b in itertools.pairwise(recorder.times(chat)))
    assert most_in_any_window(recorder.times(), 1.0) <= 30


def test_replies_go_before_pushed_messages() -> None:
    async def main() -> Recorder:
        paced, recorder = pacer(), Recorder()
        pushes = [send(paced, recorder, chat, priority=Priority.PUSH) for chat in range(1, 6)]
        tasks = [asyncio.create_task(push) for push in pushes]
        await asyncio.sleep(0)  # the pushes are in line
        await send(paced, recorder, 99, priority=Priority.REPLY)
        await asyncio.gather(*tasks)
        return recorder

    recorder = run(main())
    # The first push had its slot at once; the reply takes the next one, before the others.
    assert [chat for _, chat in recorder.sent] == [1, 99, 2, 3, 4, 5]
    assert recorder.times() == pytest.approx([n * OVERALL for n in range(6)])


def test_a_429_pauses_every_request_then_retries() -> None:
    async def main() -> Recorder:
        recorder = Recorder([RetryAfter(dt.timedelta(seconds=2))])
        paced = pacer()
        first = asyncio.create_task(send(paced, recorder, 1))
        await asyncio.sleep(0.5)
        others = [send(paced, recorder, 2), send(paced, recorder, 3, "getMe")]
        assert await first == {"ok": True}
        await asyncio.gather(*others)
        return recorder

    recorder = run(main())
    # The 429 came at 0; nothing at all went out during the two seconds Telegram asked for.
    assert recorder.sent[0] == (0.0, 1)
    assert sorted(recorder.times()[1:]) == pytest.approx([2.0, 2.0, 2.0 + OVERALL])


def test_a_request_given_up_while_waiting_frees_its_place() -> None:
    async def main() -> Recorder:
        paced, recorder = pacer(), Recorder()
        await send(paced, recorder, 1)
        waiting = asyncio.create_task(send(paced, recorder, 1))
        behind = asyncio.create_task(send(paced, recorder, 1))
        await asyncio.sleep(0.5)
        waiting.cancel()
        await behind
        return recorder

    assert run(main()).times() == pytest.approx([0.0, PRIVATE])


def test_network_errors_are_retried_with_backoff() -> None:
    async def main() -> tuple[Any, Recorder]:
        recorder = Recorder([NetworkError("Bad Gateway"), NetworkError("timed out")])
        return await send(pacer(), recorder, 1), recorder

    answer, recorder = run(main())
    assert answer == {"ok": True}
    # Half a second, then one more, and each retry keeps to the chat's interval, too.
    assert recorder.times() == pytest.approx([0.0, PRIVATE, 2 * PRIVATE])


def test_a_blocked_user_is_not_retried() -> None:
    async def main() -> Recorder:
        recorder = Recorder([Forbidden("Forbidden: bot was blocked by the user")])
        with pytest.raises(Forbidden):
            await send(pacer(), recorder, 1)
        return recorder

    assert len(run(main()).sent) == 1


def test_importing_the_telegram_transport_changes_no_environment() -> None:
    environment = {k: v for k, v in os.environ.items() if k != "PTB_TIMEDELTA"}
    script = "import os, bot.transports.telegram; print(os.environ.get('PTB_TIMEDELTA'))"
    found = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, check=True
    )
    assert found.stdout.decode().strip() == "None"
