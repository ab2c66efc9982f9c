"""One chat's messages are handled in the order they came; other chats do not wait."""

from __future__ import annotations

import asyncio

from bot.transports.ordering import InOrder


async def test_a_chats_messages_take_turns_and_other_chats_go_on() -> None:
    in_order, done = InOrder(), []
    first_may_finish = asyncio.Event()

    async def handle(chat: str, name: str, wait: asyncio.Event | None = None) -> None:
        async with in_order.turn(chat):
            if wait is not None:
                await wait.wait()
            done.append(name)

    first = asyncio.create_task(handle("anna", "anna 1", first_may_finish))
    second = asyncio.create_task(handle("anna", "anna 2"))
    other = asyncio.create_task(handle("ben", "ben 1"))
    await other  # Ben's chat does not wait for Anna's
    assert done == ["ben 1"]
    assert not second.done()
    first_may_finish.set()
    await asyncio.gather(first, second)
    assert done == ["ben 1", "anna 1", "anna 2"]
    assert len(in_order) == 0  # chats nobody waits for are forgotten
