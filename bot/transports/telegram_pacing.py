"""Pacing Telegram requests: published rate limits, 429 for the whole bot, retries."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter
from telegram.ext import BaseRateLimiter

logger = logging.getLogger(__name__)

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]
# Requests that put a message into a chat; the others (getUpdates, answerCallbackQuery, ...)
# do not count against the message limits.
MESSAGE_METHODS = frozenset(
    {"sendmessage", "editmessagetext", "editmessagereplymarkup", "senddocument", "sendphoto"}
)

# Intervals are this much longer than the published limits allow.
MARGIN = 1.1
# Chats whose interval has passed are forgotten once this many are remembered.
REMEMBERED_CHATS = 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Telegram's published limits for bots, as intervals between two messages.

    The per-chat intervals keep a margin, because a request sent on time may still arrive
    a little early or late after the one before it. The overall one needs none: a message
    also waits until a second has passed since Telegram answered the one ``overall_per_second``
    before it, so no second ever sees one too many arrive, however the requests travel.
    """

    overall: float = 1 / 30
    private_chat: float = MARGIN / 1
    group_chat: float = MARGIN * 60 / 20
    network_retries: int = 4
    retry_after_retries: int = 5

    @classmethod
    def per_second(cls, overall: float, private_chat: float, group_chat: float) -> Limits:
        """Return limits from messages per second, with the same margins as the defaults."""
        return cls(1 / overall, MARGIN / private_chat, MARGIN / group_chat)

    @property
    def overall_per_second(self) -> int | None:
        """Return how many messages may arrive in any one second (30 unless raised)."""
        return math.floor(1 / self.overall + 1e-9) if self.overall > 0 else None


class Priority(IntEnum):
    """Which waiting message goes first; pass it as ``rate_limit_args`` of a Bot call."""

    REPLY = 0  # someone sent a command and waits for the answer
    PUSH = 1  # announcements and reminders: nobody waits for them this very second


@dataclass(order=True)
class _Ticket:
    priority: int
    order: int
    granted: asyncio.Future[None] = field(compare=False)


class _Turns:
    """One holder at a time, in (priority, arrival) order, ``interval`` after the last one.

    The next turn is given ``interval`` after the previous holder let go, and never before
    ``not_before()``; a timer on the event loop gives it, so nobody polls.
    """

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float],
        not_before: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.not_before = not_before
        self.next_at = 0.0
        self._waiting: list[_Ticket] = []
        self._held = False
        self._timer: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        """Tell whether nobody holds or waits for a turn and the interval has passed."""
        return not self._held and not self._waiting and self.next_at <= self.clock()

    @contextlib.asynccontextmanager
    async def turn(self, priority: int, order: int) -> AsyncIterator[None]:
        """Wait for this request's turn and hold it for the block."""
        ticket = _Ticket(priority, order, asyncio.get_running_loop().create_future())
        heapq.heappush(self._waiting, ticket)
        self._give()
        try:
            await ticket.granted
        except asyncio.CancelledError:
            if ticket.granted.done() and not ticket.granted.cancelled():
                self._let_go()  # the turn came just as the request was given up
            else:
                self._give()
            raise
        try:
            yield
        finally:
            self._let_go()

    def _let_go(self) -> None:
        self._held = False
        self.next_at = self.clock() + self.interval
        self._give()

    def wake(self) -> None:
        """Look again whether the first in line may go: ``not_before()`` has changed."""
        self._give()

    def _give(self) -> None:
        """Give the turn to the first in line if its time has come, else set a timer for it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting and self._waiting[0].granted.done():
            heapq.heappop(self._waiting)  # given up while waiting
        if self._held or not self._waiting:
            return
        at = max(self.next_at, self.not_before())
        if at == math.inf:
            return  # whoever changes that calls again
        delay = at - self.clock()
        if delay > 0:
            self._timer = asyncio.get_running_loop().call_later(delay, self._give)
            return
        self._held = True
        heapq.heappop(self._waiting).granted.set_result(None)


class SendPacer(BaseRateLimiter[Priority]):
    """Give every message a turn in its chat, then one of the bot's; after a 429, wait.

    A message first waits for its own chat's interval (counted from Telegram's answer to
    the chat's message before), holding nothing of the bot's overall budget meanwhile; only
    then does it queue for the next overall slot. So one person's flood queues in that
    person's chat and never delays anyone else's answer.
    Within a chat and for the overall slots, replies go before pushed messages. A 429
    pauses every request of the bot, as Telegram demands.

    ``clock`` must tell the event loop's time (the default does), since timers wait.
    """

    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self._paused_until = 0.0
        self._order = itertools.count()
        self._overall = _Turns(self.limits.overall, clock, self._overall_opens)
        # The last overall_per_second messages, each with the moment Telegram answered it.
        self._recent: deque[list[float]] = deque(maxlen=self.limits.overall_per_second or 0)
        # Requests that are no messages (getUpdates, answerCallbackQuery) wait out a 429 only.
        self._unpaused = _Turns(0.0, clock, lambda: self._paused_until)
        self._chats: dict[int | str, _Turns] = {}

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(  # noqa: PLR0917 - python-telegram-bot calls it so
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: Priority | None,
    ) -> JSONResult:
        """Run one Bot API request within the limits, retrying what may be retried."""
        counted = endpoint.lower() in MESSAGE_METHODS
        priority = Priority.REPLY if rate_limit_args is None else rate_limit_args
        order = next(self._order)  # a retry keeps its place in line
        network_failures = rate_limited = 0
        while True:
            try:
                if not counted:
                    await self._wait_out_pause(priority, order)
                    return await callback(*args, **kwargs)
                async with (
                    self._chat_turn(data.get("chat_id"), priority, order),
                    self._overall_slot(priority),
                ):
                    return await callback(*args, **kwargs)
            except RetryAfter as error:
                rate_limited += 1
                seconds = self._pause(error)
                logger.warning("Telegram asked to wait %.0f s (%s)", seconds, endpoint)
                # A pushed message goes back to the outbox, which stores the pause.
                if priority is Priority.PUSH or rate_limited > self.limits.retry_after_retries:
                    raise
            except (Forbidden, BadRequest):
                raise
            except NetworkError:
                # Also 5xx answers and time-outs: wait, then try again a few times.
                network_failures += 1
                if network_failures > self.limits.network_retries or endpoint == "getUpdates":
                    raise
                await asyncio.sleep(0.5 * 2 ** (network_failures - 1))

    def _chat_turn(
        self, chat_id: int | str | None, priority: int, order: int
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the chat's turn until Telegram answered: the interval counts from there.

        By the answer the message has arrived, so the next one to the chat arrives at least
        the interval later, however long either took on its way.
        """
        if chat_id is None:
            return contextlib.nullcontext()
        return self._chat(chat_id).turn(priority, order)

    @contextlib.asynccontextmanager
    async def _overall_slot(self, priority: int) -> AsyncIterator[None]:
        """Wait for the next overall slot, and note when Telegram answered the message."""
        # Joined only once the chat's turn has come, so the line is in the order of joining.
        async with self._overall.turn(priority, next(self._order)):
            answered = [math.inf]  # not yet
            self._recent.append(answered)
        try:
            yield
        except RetryAfter as error:
            self._pause(error)  # before anyone else is let go below
            raise
        finally:
            answered[0] = self.clock()
            self._overall.wake()

    def _pause(self, error: RetryAfter) -> float:
        """Send nothing until Telegram's retry_after has passed; return its seconds."""
        seconds = retry_seconds(error)
        self.pause(seconds)
        return seconds

    def pause(self, seconds: float) -> None:
        """Send nothing for a while, e.g. for what remains of a pause stored before a restart."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)
        self._overall.wake()
        self._unpaused.wake()

    def _overall_opens(self) -> float:
        """Return when the next message may go: after a 429, and a second after the answer
        to the message overall_per_second before, so no second sees one too many arrive.
        """
        recent = self._recent
        full = bool(recent.maxlen) and len(recent) == recent.maxlen
        return max(self._paused_until, recent[0][0] + 1.0 if full else 0.0)

    async def _wait_out_pause(self, priority: int, order: int) -> None:
        async with self._unpaused.turn(priority, order):
            return

    def _chat(self, chat_id: int | str) -> _Turns:
        turns = self._chats.get(chat_id)
        if turns is None:
            if len(self._chats) >= REMEMBERED_CHATS:
                self._chats = {key: chat for key, chat in self._chats.items() if not chat.idle}
            turns = self._chats[chat_id] = _Turns(self._interval(chat_id), self.clock)
        return turns

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
