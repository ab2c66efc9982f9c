"""Pytest fixtures for the Telegram Bot API test peer; import them into a conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.telegram_peer import TelegramPeer

TOKEN = "123456:TEST"
BOT_USERNAME = "KlimaTestBot"


@pytest.fixture
async def telegram_peer() -> AsyncIterator[TelegramPeer]:
    """A running Bot API peer for TOKEN on 127.0.0.1, stopped after the test."""
    async with TelegramPeer(TOKEN, BOT_USERNAME) as peer:
        yield peer


@pytest.fixture(autouse=True, scope="session")
def timedelta_durations() -> Iterator[None]:
    """Read Telegram's durations (retry_after) as timedelta, as the Telegram transport does."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PTB_TIMEDELTA", "1")
        yield
