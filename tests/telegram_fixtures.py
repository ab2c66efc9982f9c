"""Pytest fixtures for the Telegram Bot API test peer; import them into a conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.telegram_peer import TelegramPeer

TOKEN = "123456:TEST"
BOT_USERNAME = "KlimaTestBot"


@pytest.fixture
async def telegram_peer() -> AsyncIterator[TelegramPeer]:
    """A running Bot API peer for TOKEN on 127.0.0.1, stopped after the test."""
    async with TelegramPeer(TOKEN, BOT_USERNAME) as peer:
        yield peer
