"""Answers in the order people wrote: one chat's messages one after another, chats side by side."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Hashable


class InOrder:
    """Let each chat's messages be handled one after another, in the order they arrived.

    Reads run side by side, so without this two quick commands could be answered the wrong
    way round. Waiters get their turn first come, first served; a chat nobody waits for is
    forgotten, so memory follows the chats busy right now.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: Counter[Hashable] = Counter()

    @contextlib.asynccontextmanager
    async def turn(self, chat: Hashable) -> AsyncIterator[None]:
        """Wait until the chat's earlier messages are handled, and hold the turn meanwhile."""
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._waiting[chat] += 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[chat] -= 1
            if not self._waiting[chat]:
                del self._waiting[chat]
                del self._locks[chat]

    def __len__(self) -> int:
        return len(self._locks)
