"""Pacing: the published limits hold, a 429 stops the whole bot, blocked users are not retried."""

import asyncio
import datetime as dt
import itertools
import time
from typing import Any

import pytest
from telegram.error import Forbidden, NetworkError, RetryAfter

from bot.transports.telegram_pacing import Limits, SendPacer


class Recorder:
    """A stand-in for the HTTP call: records when each request went out."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.sent: list[tuple[float, Any]] = []
        self.failures = failures or []

    async def __call__(self, chat_id: Any) -> dict[str, Any]:
        self.sent.append((time.monotonic(), chat_id))
        if self.failures:
            raise self.failures.pop(0)
        return {"ok": True}


async def send(
    pacer: SendPacer, recorder: Recorder, chat_id: Any, method: str = "sendMessage"
) -> Any:
    return await pacer.process_request(
        recorder, (chat_id,), {}, method, {"chat_id": chat_id}, None
    )


async def test_one_private_chat_gets_at_most_one_message_a_second() -> None:
    pacer, recorder = SendPacer(Limits(private_chat=0.2)), Recorder()
    await asyncio.gather(*(send(pacer, recorder, 42) for _ in range(4)))
    times = [at for at, _ in recorder.sent]
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(times))


async def test_other_chats_do_not_wait_for_a_busy_one() -> None:
    pacer, recorder = SendPacer(Limits(private_chat=1.0, overall=0.001)), Recorder()
    started = time.monotonic()
    await asyncio.gather(*(send(pacer, recorder, chat) for chat in range(1, 21)))
    assert time.monotonic() - started < 0.5
    assert len(recorder.sent) == 20


async def test_the_overall_rate_holds_across_chats() -> None:
    pacer, recorder = SendPacer(Limits(overall=0.02)), Recorder()
    await asyncio.gather(*(send(pacer, recorder, chat) for chat in range(1, 11)))
    times = sorted(at for at, _ in recorder.sent)
    assert times[-1] - times[0] >= 9 * 0.019


async def test_a_429_pauses_every_request_then_retries() -> None:
    recorder = Recorder([RetryAfter(dt.timedelta(seconds=1))])
    pacer = SendPacer(Limits(overall=0.0, private_chat=0.0))
    first = asyncio.create_task(send(pacer, recorder, 1))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(send(pacer, recorder, 2, "getMe"))
    assert await first == {"ok": True}
    await second
    failed_at = recorder.sent[0][0]
    # Nothing at all went out during the second Telegram asked for.
    assert all(at >= failed_at + 0.99 for at, _ in recorder.sent[1:])
    assert len(recorder.sent) == 3


async def test_network_errors_are_retried_with_backoff() -> None:
    recorder = Recorder([NetworkError("Bad Gateway"), NetworkError("timed out")])
    assert await send(SendPacer(Limits(private_chat=0.0)), recorder, 1) == {"ok": True}
    assert len(recorder.sent) == 3


async def test_a_blocked_user_is_not_retried() -> None:
    recorder = Recorder([Forbidden("Forbidden: bot was blocked by the user")])
    with pytest.raises(Forbidden):
        await send(SendPacer(), recorder, 1)
    assert len(recorder.sent) == 1
