"""A bare mautrix echo bot with encryption: the baseline that bench_matrix.py compares with."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from mautrix.api import HTTPAPI
from mautrix.client import Client
from mautrix.client.encryption_manager import DecryptionDispatcher
from mautrix.crypto import OlmMachine, PgCryptoStateStore, PgCryptoStore
from mautrix.types import (
    EventType,
    Filter,
    Membership,
    MemberStateEventContent,
    MessageEvent,
    MessageType,
    RoomEventFilter,
    RoomFilter,
    StateFilter,
    StrippedStateEvent,
    TextMessageEventContent,
    UserID,
)
from mautrix.util.async_db import Database

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Klimabot's decryption, which waits for a megolm key still on its way: the same for both bots.
from bot.transports.matrix import PatientDecryption  # noqa: E402

READY = "matrix echo bot ready"
PICKLE_KEY = "matrix-echo-bot-pickles"
TOKEN_VARIABLE = "MATRIX_ECHO_TOKEN"

logger = logging.getLogger("matrix_echo_bot")


class EchoBot:
    """Join every invitation and answer each m.text with an m.notice of the same text."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Awaitable[None]) -> None:
        """Run work beside the sync loop, which waits for its handlers before syncing on."""
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def on_member(self, event: StrippedStateEvent) -> None:
        """Join a room the bot is invited to."""
        content = event.content
        if (
            event.state_key == self.client.mxid
            and isinstance(content, MemberStateEventContent)
            and content.membership == Membership.INVITE
        ):
            await self.client.join_room(event.room_id)

    async def on_message(self, event: MessageEvent) -> None:
        """Send an m.text back as an m.notice."""
        if event.sender == self.client.mxid or event.content.msgtype != MessageType.TEXT:
            return
        notice = TextMessageEventContent(msgtype=MessageType.NOTICE, body=event.content.body)
        self.spawn(self.reply(event, notice))

    async def reply(self, event: MessageEvent, notice: TextMessageEventContent) -> None:
        """Send the notice, encrypted in an encrypted room, with a retry-safe transaction id."""
        try:
            await self.client.send_message_event(
                event.room_id, EventType.ROOM_MESSAGE, notice, txn_id=f"echo-{event.event_id}"
            )
        except Exception:
            logger.exception("answering in %s failed", event.room_id)


def sync_filter() -> Filter:
    """Return the same sync filter as Klimabot's transport."""
    return Filter(
        room=RoomFilter(
            timeline=RoomEventFilter(limit=100),
            state=StateFilter(lazy_load_members=False),
        ),
    )


async def open_stores(path: Path, user_id: str) -> tuple[list[Database], Any, PgCryptoStore]:
    """Open the state and crypto stores in one SQLite file, as Klimabot's transport does."""
    state_db = Database.create(f"sqlite:{path}", upgrade_table=PgCryptoStateStore.upgrade_table)
    await state_db.start()
    crypto_db = Database.create(f"sqlite:{path}", upgrade_table=PgCryptoStore.upgrade_table)
    crypto_db.override_pool(state_db)
    await crypto_db.start()
    return (
        [crypto_db, state_db],
        PgCryptoStateStore(state_db),
        PgCryptoStore(user_id, PICKLE_KEY, crypto_db),
    )


async def serve(homeserver: str, user_id: str, data_dir: Path) -> None:
    """Sync and echo until SIGTERM or SIGINT."""
    data_dir.mkdir(parents=True, exist_ok=True)
    databases, state_store, crypto_store = await open_stores(data_dir / "echo.db", user_id)
    api = HTTPAPI(homeserver, os.environ[TOKEN_VARIABLE])
    try:
        whoami = await Client(api=api).whoami()
        client = Client(
            mxid=UserID(user_id),
            device_id=whoami.device_id,
            api=api,
            state_store=state_store,
            sync_store=crypto_store,
        )
        crypto = OlmMachine(client, crypto_store, state_store)
        client.crypto = crypto
        client.remove_dispatcher(DecryptionDispatcher)
        client.add_dispatcher(PatientDecryption)
        await crypto.load()
        if crypto.account is None or not crypto.account.shared:
            await crypto.share_keys()
        bot = EchoBot(client)
        client.add_event_handler(EventType.ROOM_MEMBER, bot.on_member)
        client.add_event_handler(EventType.ROOM_MESSAGE, bot.on_message)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        syncing = client.start(sync_filter())
        print(READY, file=sys.stderr, flush=True)
        await stop.wait()
        client.stop()
        await asyncio.gather(syncing, *bot.tasks, return_exceptions=True)
        # Decryptions dispatched by the last sync run in tasks of their own; let them end.
        others = asyncio.all_tasks() - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=5)
    finally:
        await api.session.close()
        for database in databases:
            await database.stop()


def main() -> None:
    """Run the echo bot (access token in MATRIX_ECHO_TOKEN)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--homeserver", required=True, help="base URL of the homeserver")
    parser.add_argument("--user-id", required=True, help="the bot's Matrix ID")
    parser.add_argument("--data-dir", type=Path, required=True, help="where its keys live")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args.homeserver, args.user_id, args.data_dir))


if __name__ == "__main__":
    main()
