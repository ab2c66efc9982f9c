"""Reaching a chat server that may be down: capped backoff, one log line when it goes and comes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CannotServe(Exception):
    """The platform answers but cannot be served as configured; retrying will not help.

    The message is the one line the operator sees (a refused token, a store with another key).
    """


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between attempts: doubling from ``first`` up to ``longest`` seconds."""

    first: float = 1.0
    longest: float = 60.0

    def delays(self) -> Iterator[float]:
        """Yield the waits before the second, third, … attempt."""
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.longest)


class Outage:
    """Tell the operator once when a server stops answering and once when it answers again."""

    def __init__(self, platform: str, server: str, backoff: Backoff) -> None:
        self.platform, self.server, self.backoff = platform, server, backoff
        self.down = False

    def failed(self, error: BaseException) -> None:
        """Note a failed attempt; only the first of an outage is logged above debug level."""
        reason = str(error) or type(error).__name__
        if self.down:
            logger.debug("%s: %s still does not answer: %s", self.platform, self.server, reason)
            return
        self.down = True
        logger.warning(
            "%s: %s does not answer (%s); retrying, with waits of up to %g s",
            self.platform,
            self.server,
            reason,
            self.backoff.longest,
        )

    def recovered(self) -> None:
        """Note a successful attempt; log it if it ends an outage."""
        if self.down:
            self.down = False
            logger.info("%s: %s answers again", self.platform, self.server)


async def keep_trying(
    attempt: Callable[[], Awaitable[T]],
    outage: Outage,
    transient: Callable[[BaseException], bool],
) -> T:
    """Return what ``attempt`` gives, calling it again after transient failures with backoff.

    Cancellation ends the waiting at once; other errors are raised as they are.
    """
    delays = outage.backoff.delays()
    while True:
        try:
            result = await attempt()
        except Exception as error:
            if not transient(error):
                raise
            outage.failed(error)
            await asyncio.sleep(next(delays))
        else:
            outage.recovered()
            return result
