"""Transports: each connects one chat platform to dispatch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.core import Platform, Recipient, Reply, Request

RequestHandler = Callable[[Request], Awaitable[Reply | None]]


class Transport(Protocol):
    """A chat platform: requests in, replies and pushed messages out."""

    platform: Platform

    async def start(self) -> None:
        """Connect and begin handing requests to dispatch."""

    async def stop(self) -> None:
        """Finish the requests in hand and disconnect."""

    async def send(self, recipient: Recipient, reply: Reply) -> None:
        """Push a message to one chat."""
