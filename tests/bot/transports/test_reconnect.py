"""Reaching a server that may be down: the waits, and what the operator is told."""

from __future__ import annotations

import itertools
import logging

import pytest

from bot.transports.reconnect import Backoff, Outage, keep_trying


def test_waits_double_up_to_the_longest() -> None:
    delays = Backoff(first=1, longest=60).delays()
    assert list(itertools.islice(delays, 9)) == [1, 2, 4, 8, 16, 32, 60, 60, 60]


async def test_an_outage_is_told_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage("Matrix", "https://matrix.example.org", Backoff(first=0, longest=0))
    answers = iter([ConnectionError("refused")] * 5 + ["synced"])

    async def attempt() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with caplog.at_level(logging.INFO, logger="bot.transports.reconnect"):
        result = await keep_trying(attempt, outage, lambda e: isinstance(e, ConnectionError))
    assert result == "synced"
    assert [record.getMessage() for record in caplog.records] == [
        "Matrix: https://matrix.example.org does not answer (refused); "
        "retrying, with waits of up to 0 s",
        "Matrix: https://matrix.example.org answers again",
    ]


async def test_a_refusal_is_raised_at_once() -> None:
    outage = Outage("Telegram", "https://api.telegram.org", Backoff(first=0, longest=0))
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise PermissionError("token refused")

    with pytest.raises(PermissionError):
        await keep_trying(attempt, outage, lambda e: isinstance(e, ConnectionError))
    assert calls == 1
    assert not outage.down
