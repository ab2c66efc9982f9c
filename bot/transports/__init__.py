"""Transports: each connects one chat platform to dispatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.core import MessageRef, Platform, Recipient, Reply, Request

RequestHandler = Callable[[Request], Awaitable[Reply | None]]


class Transport(Protocol):
    """A chat platform: requests in, replies and pushed messages out."""

    platform: Platform

    async def start(self) -> None:
        """Connect and begin handing requests to dispatch."""

    async def stop(self) -> None:
        """Finish the requests in hand and disconnect."""

    async def send(self, recipient: Recipient, reply: Reply, *, key: str) -> MessageRef:
        """Push a message to one chat so that it notifies; return the message sent.

        ``key`` is stable across restarts: a platform that knows idempotent sends shows a
        message sent twice with the same key once. Raises a ``DeliveryError`` where the
        platform refused it; anything else is a passing failure worth a retry.
        """

    async def edit(self, recipient: Recipient, message: MessageRef, reply: Reply) -> None:
        """Replace the text and buttons of a message the bot sent before."""

    def hold(self, seconds: float) -> None:
        """Send nothing, replies included, for a while: a pause stored before a restart."""
