"""Pacing Telegram requests: published rate limits, 429 for the whole bot, retries."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter

logger = logging.getLogger(__name__)

# Opt in to what python-telegram-bot 23 will do anyway: durations such as retry_after as
# timedelta, without a deprecation warning each time Telegram answers 429.
os.environ.setdefault("PTB_TIMEDELTA", "1")

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]
# Requests that put a message into a chat; the others (getUpdates, answerCallbackQuery, ...)
# do not count against the message limits.
MESSAGE_METHODS = frozenset(
    {"sendmessage", "editmessagetext", "editmessagereplymarkup", "senddocument", "sendphoto"}
)

# The rate_limit_args of a pushed message: it waits behind replies, and a 429 is handed back
# at once, so that the pause can be stored and the message sent later.
PUSH: dict[str, Any] = {"push": True}

# Intervals are this much longer than the published limits allow.
MARGIN = 1.1


@dataclass(frozen=True, slots=True)
class Limits:
    """Telegram's published limits for bots, as intervals between two messages.

    Each keeps a margin, because a request sent on time may still arrive a little early
    or late after the one before it.
    """

    overall: float = MARGIN / 30
    private_chat: float = MARGIN / 1
    group_chat: float = MARGIN * 60 / 20
    network_retries: int = 4
    retry_after_retries: int = 5

    @classmethod
    def per_second(cls, overall: float, private_chat: float, group_chat: float) -> Limits:
        """Return limits from messages per second, with the same margin as the defaults."""
        return cls(MARGIN / overall, MARGIN / private_chat, MARGIN / group_chat)


class SendPacer(BaseRateLimiter[dict[str, Any]]):
    """Reserve a slot for every message; after a 429 send nothing until it has passed.

    Each message gets the earliest moment that keeps the overall and per-chat intervals,
    reserved under a lock and waited for outside it, so that one slow chat never holds up
    the others. A 429 pauses every request of the bot, as Telegram demands.
    """

    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self._lock = asyncio.Lock()
        self._next_overall = 0.0
        self._next_in_chat: dict[int | str, float] = {}
        self._paused_until = 0.0

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    def pause(self, seconds: float) -> None:
        """Send nothing for a while, e.g. for what remains of a pause stored before a restart."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)

    async def process_request(  # noqa: PLR0917 - python-telegram-bot calls it so
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> JSONResult:
        """Run one Bot API request within the limits, retrying what may be retried."""
        counted = endpoint.lower() in MESSAGE_METHODS
        push = bool(rate_limit_args and rate_limit_args.get("push"))
        network_failures = rate_limited = 0
        while True:
            await self._wait_for_slot(data.get("chat_id") if counted else None, counted)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                rate_limited += 1
                seconds = retry_seconds(error)
                self._paused_until = max(self._paused_until, self.clock() + seconds)
                logger.warning("Telegram asked to wait %.0f s (%s)", seconds, endpoint)
                if push or rate_limited > self.limits.retry_after_retries:
                    raise
            except (Forbidden, BadRequest):
                raise
            except NetworkError:
                # Also 5xx answers and time-outs: wait, then try again a few times.
                network_failures += 1
                if network_failures > self.limits.network_retries or endpoint == "getUpdates":
                    raise
                await asyncio.sleep(0.5 * 2 ** (network_failures - 1))

    async def _wait_for_slot(self, chat_id: int | str | None, counted: bool) -> None:
        while True:
            async with self._lock:
                now = self.clock()
                start = max(now, self._paused_until)
                if counted:
                    start = max(start, self._next_overall)
                    if chat_id is not None:
                        start = max(start, self._next_in_chat.get(chat_id, 0.0))
                        self._next_in_chat[chat_id] = start + self._interval(chat_id)
                    self._next_overall = start + self.limits.overall
            if start > now:
                await asyncio.sleep(start - now)
            # A 429 may have come in while this request waited for its slot.
            if self.clock() >= self._paused_until:
                return

    def _interval(self, chat_id: int | str) -> float:
        # Group and channel ids are negative (or @names); private chats are the user's id.
        private = isinstance(chat_id, int) and chat_id > 0
        if isinstance(chat_id, str):
            private = chat_id.lstrip("-").isdigit() and not chat_id.startswith("-")
        return self.limits.private_chat if private else self.limits.group_chat


def retry_seconds(error: RetryAfter) -> float:
    """Return how long Telegram asked to wait, in seconds."""
    pause = error.retry_after
    return float(pause) if isinstance(pause, int | float) else pause.total_seconds()
