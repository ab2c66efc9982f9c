"""The Matrix transport: a mautrix client with end-to-end encryption, in the shared loop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import ClientError
from markupsafe import escape
from mautrix.client import Client, SyncStream
from mautrix.client.encryption_manager import DecryptionDispatcher
from mautrix.crypto import OlmMachine, PgCryptoStateStore, PgCryptoStore
from mautrix.crypto.attachments import encrypt_attachment
from mautrix.errors import (
    DecryptionError,
    MatrixConnectionError,
    MatrixError,
    MatrixRequestError,
    MForbidden,
    MNotFound,
    MUnknown,
    MUnknownToken,
    SessionNotFound,
)
from mautrix.types import (
    EncryptedEvent,
    EventID,
    EventType,
    FileInfo,
    Filter,
    FilterID,
    Format,
    MediaMessageEventContent,
    Membership,
    MemberStateEventContent,
    MessageEvent,
    MessageType,
    ReactionEvent,
    RoomEventFilter,
    RoomFilter,
    RoomID,
    StateFilter,
    StrippedStateEvent,
    TextMessageEventContent,
    UserID,
)
from mautrix.util.async_db import Database

from bot.core import (
    Button,
    ChatId,
    MessageRef,
    Platform,
    RateLimited,
    Recipient,
    Rejected,
    Reply,
    Request,
    Sender,
    Unreachable,
    UserId,
    parse_action,
)
from bot.i18n import _
from bot.markup import split_markup, to_plain
from bot.transports import RequestHandler
from bot.transports.matrix_api import DEFAULT_WAIT_MS, PacedHTTPAPI
from bot.transports.matrix_store import STORE, prepare_store
from bot.transports.ordering import InOrder
from bot.transports.reconnect import Backoff, CannotServe, Outage, keep_trying

logger = logging.getLogger(__name__)

# Where a reply keeps its reaction buttons, so a tap works after a restart too.
BUTTONS_KEY = "org.klimabot.buttons"
TEXT_LIMIT = 30_000  # well below Matrix's 64 KiB event limit, HTML included
COMMAND = re.compile(r"^[!/](?P<name>[^\s@:]+)(?:\s+(?P<args>.*))?$", re.DOTALL)
KEY_WAIT = 10.0  # seconds to wait for a megolm key that is still on its way
SYNC_WAIT_MS = 30_000  # how long the homeserver may hold a sync open when nothing happens


@dataclass(frozen=True, slots=True)
class MatrixSettings:
    """The bot account, its secret and where its keys and sync state live."""

    homeserver: str
    user_id: str
    data_dir: Path
    access_token: str | None = None
    password: str | None = None
    device_name: str = "Klimabot"
    # The crypto store's key; None: one generated once and kept in data_dir.
    pickle_key: str | None = field(default=None, repr=False)
    # Waits between attempts to reach the homeserver, at start and when it goes away.
    backoff: Backoff = field(default_factory=Backoff)


class MatrixTransport:
    """Serve members on Matrix: direct chats (encrypted or not) and group rooms."""

    platform = Platform.MATRIX

    def __init__(
        self,
        handle: RequestHandler,
        settings: MatrixSettings,
        *,
        coordinators: frozenset[str] = frozenset(),
        unreachable: Callable[[Recipient], Awaitable[None]] | None = None,
    ) -> None:
        self.handle = handle
        self.settings = settings
        self.coordinators = coordinators
        self.unreachable = unreachable
        self.client: Client | None = None
        self._databases: list[Database] = []
        self._in_order = InOrder()
        self._sync: asyncio.Task[None] | None = None
        self._handling: asyncio.Future[Any] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._outage = Outage("Matrix", settings.homeserver, settings.backoff)
        self._history_before = 0
        self._invites: set[RoomID] = set()
        self._plain_rooms: set[RoomID] = set()

    # Lifecycle

    async def start(self) -> None:
        """Log in (once), load the device keys, and begin syncing.

        While the homeserver does not answer, try again with growing waits; return once
        syncing.
        """
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        assert self.client is not None
        logger.info(
            "Matrix: serving as %s (device %s)", self.settings.user_id, self.client.device_id
        )

    async def _start(self) -> None:
        settings = self.settings
        pickle_key = await asyncio.to_thread(prepare_store, settings.data_dir, settings.pickle_key)
        # One SQLite file for both stores: mautrix hands a connection down the call chain,
        # and a store must never receive the other one's connection to another file.
        state_db = await self._database(PgCryptoStateStore.upgrade_table)
        crypto_db = await self._database(PgCryptoStore.upgrade_table, shared=state_db)
        state_store = PgCryptoStateStore(state_db)
        crypto_store = PgCryptoStore(settings.user_id, pickle_key, crypto_db)
        token, device_id = await self._reach(self._session)
        api = PacedHTTPAPI(settings.homeserver, token)
        client = Client(
            mxid=UserID(settings.user_id),
            device_id=device_id,
            api=api,
            state_store=state_store,
            sync_store=crypto_store,
        )
        self.client = client
        crypto = OlmMachine(client, crypto_store, state_store)
        client.crypto = crypto
        client.remove_dispatcher(DecryptionDispatcher)
        await crypto.load()
        # The very first sync hands over the rooms' history, which is not for us to answer;
        # later starts continue from the stored sync token and miss nothing.
        self._history_before = (
            int(time.time() * 1000) if await crypto_store.get_next_batch() is None else 0
        )
        self._add_handlers(client)
        filter_id = await self._reach(lambda: self._prepare(client))
        self._sync = asyncio.create_task(self._sync_forever(client, filter_id))

    async def _prepare(self, client: Client) -> FilterID:
        crypto = client.crypto
        assert crypto is not None
        if crypto.account is None or not crypto.account.shared:
            await crypto.share_keys()
        return await client.create_filter(_sync_filter())

    async def _reach(self, attempt: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await keep_trying(attempt, self._outage, _transient)
        except (MForbidden, MUnknownToken) as error:
            raise CannotServe(
                _("The homeserver {server} refuses the bot's login: {error}").format(
                    server=self.settings.homeserver, error=error
                )
            ) from error

    def _add_handlers(self, client: Client) -> None:
        decryption = PatientDecryption(client)
        client.add_event_handler(EventType.ROOM_ENCRYPTED, self._spawning(decryption.handle))
        client.add_event_handler(EventType.ROOM_MEMBER, self._spawning(self._on_member))
        client.add_event_handler(EventType.ROOM_MESSAGE, self._spawning(self._on_message))
        client.add_event_handler(EventType.REACTION, self._spawning(self._on_reaction))
        # Every handler, mautrix's own too, is finished before the next sync: so nothing runs
        # unseen when the bot stops. Handlers that may take long hand their work to our tasks.
        # A homeserver that goes away under a handler is told once, like a failed sync.
        every = [(EventType.ALL, client.global_event_handlers), *client.event_handlers.items()]
        for event_type, handlers in every:
            for handler, props in list(handlers.items()):
                client.remove_event_handler(event_type, handler)
                client.add_event_handler(
                    event_type, self._guarded(handler), True, props.sync_stream
                )

    def _guarded(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Any]:
        async def guarded(event: Any) -> None:
            try:
                await handler(event)
            except Exception as error:
                if not _transient(error):
                    raise
                self._outage.failed(error)

        return guarded

    async def _sync_forever(self, client: Client, filter_id: FilterID) -> None:
        """Sync until stopped; while the homeserver does not answer, retry with backoff."""
        store = client.sync_store
        next_batch = await store.get_next_batch()
        delays = self.settings.backoff.delays()
        while True:
            try:
                data = await client.sync(
                    since=next_batch, filter_id=filter_id, timeout=SYNC_WAIT_MS
                )
            except MUnknownToken:
                logger.error("Matrix: the homeserver no longer accepts the bot's access token")
                return
            except Exception as error:
                self._outage.failed(error)
                await asyncio.sleep(next(delays))
                continue
            self._outage.recovered()
            delays = self.settings.backoff.delays()
            next_batch = data.get("next_batch")
            try:
                await store.put_next_batch(next_batch)
                tasks = client.handle_sync(data)
            except Exception:
                # One sync that cannot be stored or read must not end the loop.
                logger.exception("Matrix: handling a sync failed")
                continue
            # Shielded: a stop waits for the events in hand instead of cutting them off.
            self._handling = asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.shield(self._handling)

    async def stop(self) -> None:
        """Stop syncing, finish the events in hand, and close the stores."""
        client = self.client
        sync, self._sync = self._sync, None
        if sync is not None:
            sync.cancel()
            await asyncio.gather(sync, return_exceptions=True)
        if client is not None:
            await self._finish_handlers()  # they still answer, so the client stays meanwhile
            self.client = None
            await client.api.session.close()
        for database in reversed(self._databases):
            await database.stop()
        self._databases.clear()

    async def _finish_handlers(self, within: float = 10.0) -> None:
        # The last sync's events may still be decrypting or being answered; the stores and
        # the session must outlive them.
        deadline = time.monotonic() + within
        if self._handling is not None:
            await asyncio.wait([self._handling], timeout=within)
        while time.monotonic() < deadline:
            pending = [task for task in self._tasks if not task.done()]
            if not pending:
                return
            await asyncio.wait(pending, timeout=deadline - time.monotonic())

    async def _database(self, upgrade_table: Any, shared: Database | None = None) -> Database:
        path = self.settings.data_dir / STORE
        database = Database.create(f"sqlite:{path}", upgrade_table=upgrade_table)
        if shared is not None:
            database.override_pool(shared)
        await database.start()
        self._databases.append(database)
        return database

    async def _session(self) -> tuple[str, Any]:
        """Return the access token and device id, logging in with the password only once."""
        settings = self.settings
        saved = settings.data_dir / "session.json"
        if settings.access_token:
            api = PacedHTTPAPI(settings.homeserver, settings.access_token)
            try:
                whoami = await Client(api=api).whoami()
            finally:
                await api.session.close()
            return settings.access_token, whoami.device_id
        if saved.exists():
            session = json.loads(saved.read_text(encoding="utf-8"))
            return str(session["access_token"]), session["device_id"]
        if not settings.password:
            raise RuntimeError("no Matrix access token or password")
        api = PacedHTTPAPI(settings.homeserver)
        try:
            login = await Client(mxid=UserID(settings.user_id), api=api).login(
                password=settings.password, device_name=settings.device_name
            )
        finally:
            await api.session.close()
        # The device (and with it the keys members have seen) stays the same next time.
        saved.touch(mode=0o600)
        saved.write_text(
            json.dumps({"access_token": login.access_token, "device_id": login.device_id}),
            encoding="utf-8",
        )
        return login.access_token, login.device_id

    # Inbound

    def _spawning(self, handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Any]:
        """Wrap a handler so that it runs as one of our tasks, beside the sync loop."""

        async def spawn(event: Any) -> None:
            self._spawn(handler(event))

        return spawn

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(self._logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _logged(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as error:
            if _transient(error):
                self._outage.failed(error)
            else:
                logger.exception("Matrix: handling an event failed")

    async def _on_member(self, event: StrippedStateEvent) -> None:
        client = self.client
        if client is None or event.state_key != client.mxid:
            return
        content = event.content
        if not isinstance(content, MemberStateEventContent):
            return
        if content.membership != Membership.INVITE or event.room_id in self._invites:
            return
        # mautrix hands the same invite over again with the joined room: answer it once.
        self._invites.add(event.room_id)
        direct = bool(content.is_direct)
        if not direct and event.sender not in self.coordinators:
            logger.info(
                "Matrix: %s invited the bot to %s; only coordinators may",
                event.sender,
                event.room_id,
            )
            await client.leave_room(event.room_id)
            return
        await client.join_room(event.room_id)
        if direct:
            # A new direct chat: greet the member the way /start does.
            request = self._request(event.room_id, event.sender, "start", "", group=False)
            await self._answer(event.room_id, request, f"greet-{event.room_id}")

    async def _on_message(self, event: MessageEvent) -> None:
        client = self.client
        if client is None or event.sender == client.mxid:
            return
        content = event.content
        if content.msgtype not in (MessageType.TEXT, MessageType.EMOTE):
            return
        if event.timestamp < self._history_before:
            return
        text = _without_reply_fallback(content.body or "")
        group = await self._is_group(event.room_id)
        match = COMMAND.match(text.strip())
        if match is None and group:
            return
        command = match["name"].lower() if match else ""
        args = (match["args"] or "").strip() if match else text.strip()
        request = self._request(event.room_id, event.sender, command, args, group=group)
        await self._answer(event.room_id, request, f"reply-{event.event_id}")

    async def _on_reaction(self, event: ReactionEvent) -> None:
        client = self.client
        if client is None or event.sender == client.mxid:
            return
        relation = event.content.relates_to
        if relation.event_id is None or not relation.key:
            return
        target = await self._event(event.room_id, relation.event_id)
        if target is None or target.sender != client.mxid:
            return
        actions = target.content.get(BUTTONS_KEY) if hasattr(target.content, "get") else None
        action = actions.get(relation.key) if isinstance(actions, dict) else None
        if not isinstance(action, str):
            return
        command, args = parse_action(action)
        request = self._request(
            event.room_id,
            event.sender,
            command,
            args,
            group=await self._is_group(event.room_id),
            via_button=True,
            origin=MessageRef(relation.event_id),
        )
        await self._answer(event.room_id, request, f"press-{event.event_id}")

    def _request(
        self,
        room_id: RoomID,
        sender: UserID,
        command: str,
        args: str,
        *,
        group: bool,
        via_button: bool = False,
        origin: MessageRef | None = None,
    ) -> Request:
        return Request(
            Platform.MATRIX,
            ChatId(room_id),
            Sender(UserId(sender), sender),
            command,
            args,
            is_group=group,
            via_button=via_button,
            origin=origin,
        )

    async def _answer(self, room_id: RoomID, request: Request, txn: str) -> None:
        try:
            async with self._in_order.turn(room_id):
                reply = await self.handle(request)
                if reply is None or (request.is_group and reply.is_error):
                    return
                await self._deliver(room_id, reply, txn)
        except Exception as error:
            if _transient(error):
                self._outage.failed(error)
            else:
                logger.exception("Matrix: answering in %s failed", room_id)

    async def _encrypted(self, room_id: RoomID) -> bool:
        """Tell whether a room is encrypted, asking the homeserver once per plain room."""
        known = await self._state_store().is_encrypted(room_id)
        if known is not None:
            return bool(known)
        if room_id in self._plain_rooms:
            return False
        assert self.client is not None
        try:
            await self.client.get_state_event(room_id, EventType.ROOM_ENCRYPTION)
        except MNotFound:
            # Encryption cannot be switched off again, and switching it on arrives as state.
            self._plain_rooms.add(room_id)
            return False
        return True

    def _state_store(self) -> Any:
        assert self.client is not None
        assert self.client.state_store is not None
        return self.client.state_store

    async def _left_alone(self, room_id: RoomID) -> bool:
        """Tell whether everyone else left the room, as far as the synced state knows."""
        assert self.client is not None
        members = await self._state_store().get_members(room_id)
        # No members known at all means no state yet, not an empty room: send and see.
        return bool(members) and all(member == self.client.mxid for member in members)

    async def _is_group(self, room_id: RoomID) -> bool:
        members = await self._state_store().get_members(room_id)
        return len(members) > 2

    async def _event(self, room_id: RoomID, event_id: EventID) -> Any:
        client = self.client
        assert client is not None
        try:
            event = await client.get_event(room_id, event_id)
            if isinstance(event, EncryptedEvent) and client.crypto is not None:
                return await client.crypto.decrypt_megolm_event(event)
        except MatrixError as error:
            logger.info("Matrix: cannot read %s: %s", event_id, error)
            return None
        return event

    # Outbound

    async def send(self, recipient: Recipient, reply: Reply, *, key: str) -> MessageRef:
        """Push a message into one room as m.text, so that clients notify.

        The key becomes the transaction id: sent again, the homeserver shows it once.
        """
        room_id = RoomID(recipient.chat_id)
        if await self._left_alone(room_id):
            raise Unreachable(f"nobody but the bot is in {room_id} any more")
        try:
            event_id = await self._deliver(
                RoomID(recipient.chat_id), reply, f"push-{key}", MessageType.TEXT
            )
        except (MForbidden, MNotFound, MUnknown) as error:
            raise Unreachable(str(error)) from error
        except MatrixRequestError as error:
            if error.http_status == 429:
                raise RateLimited(DEFAULT_WAIT_MS / 1000) from error
            if 400 <= error.http_status < 500:
                raise Rejected(f"{error.errcode}: {error.message}") from error
            raise
        return MessageRef(event_id)

    def hold(self, seconds: float) -> None:
        """Nothing to hold: the homeserver's limits are waited out per request."""

    async def edit(self, recipient: Recipient, message: MessageRef, reply: Reply) -> None:
        """Replace a message the bot sent (an m.replace event), such as a progress report."""
        client = self.client
        assert client is not None
        room_id = RoomID(recipient.chat_id)
        content = _notice(split_markup(reply.text, TEXT_LIMIT)[0], _buttons(reply.buttons)[1])
        content.set_edit(EventID(message))
        await client.send_message_event(
            room_id,
            EventType.ROOM_MESSAGE,
            content,
            disable_encryption=not await self._encrypted(room_id),
        )

    async def _deliver(
        self,
        room_id: RoomID,
        reply: Reply,
        txn: str | None,
        msgtype: MessageType = MessageType.NOTICE,
    ) -> EventID:
        client = self.client
        assert client is not None
        parts = split_markup(reply.text, TEXT_LIMIT)
        reactions, hints = _buttons(reply.buttons)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            content = _notice(part, hints if last else [], msgtype)
            if last and reactions:
                content[BUTTONS_KEY] = {key: button.action for key, button in reactions}
            event_id = await client.send_message_event(
                room_id,
                EventType.ROOM_MESSAGE,
                content,
                disable_encryption=not await self._encrypted(room_id),
                txn_id=f"{txn}-{index}" if txn else None,
            )
        encrypted = await self._encrypted(room_id)
        for number, (key, _button) in enumerate(reactions):
            await client.react(
                room_id,
                event_id,
                key,
                disable_encryption=not encrypted,
                txn_id=f"{txn}-react-{number}" if txn else None,
            )
        for number, attachment in enumerate(reply.attachments):
            await self._send_file(
                room_id,
                attachment.filename,
                attachment.mime_type,
                attachment.data,
                f"{txn}-file-{number}" if txn else None,
            )
        return event_id

    async def _send_file(
        self, room_id: RoomID, name: str, mime: str, data: bytes, txn: str | None
    ) -> None:
        client = self.client
        assert client is not None
        content = MediaMessageEventContent(
            msgtype=MessageType.IMAGE if mime.startswith("image/") else MessageType.FILE,
            body=name,
            info=FileInfo(mimetype=mime, size=len(data)),
        )
        if await self._encrypted(room_id):
            encrypted, file = encrypt_attachment(data)
            file.url = await client.upload_media(encrypted, "application/octet-stream", name)
            content.file = file
        else:
            content.url = await client.upload_media(data, mime, name)
        await client.send_message_event(
            room_id,
            EventType.ROOM_MESSAGE,
            content,
            disable_encryption=not await self._encrypted(room_id),
            txn_id=txn,
        )


class PatientDecryption(DecryptionDispatcher):
    """Decrypt incoming events, waiting a little for a key that is still on its way.

    A member's first message and the key to read it can arrive in the same sync; mautrix's
    own dispatcher would give up on the message at once.
    """

    async def handle(self, evt: EncryptedEvent) -> None:
        """Decrypt the event and dispatch it as if it had arrived in the clear."""
        crypto = self.client.crypto
        assert crypto is not None
        try:
            decrypted = await crypto.decrypt_megolm_event(evt)
        except SessionNotFound:
            session = evt.content.session_id
            if not await crypto.wait_for_session(evt.room_id, session, timeout=KEY_WAIT):
                logger.warning("Matrix: no key arrived for %s", evt.event_id)
                return
            decrypted = await crypto.decrypt_megolm_event(evt)
        except DecryptionError as error:
            logger.warning("Matrix: cannot decrypt %s: %s", evt.event_id, error)
            return
        source: SyncStream = getattr(evt, "source", SyncStream.JOINED_ROOM)
        self.client.dispatch_event(decrypted, source)


def _transient(error: BaseException) -> bool:
    """Tell failures worth retrying (no connection, timeouts, 5xx) from refusals."""
    if isinstance(error, MatrixRequestError):
        return error.http_status >= 500
    return isinstance(error, MatrixConnectionError | ClientError | TimeoutError)


def _notice(
    text: Any, hints: list[Button], msgtype: MessageType = MessageType.NOTICE
) -> TextMessageEventContent:
    html = str(text).replace("\n", "<br/>")
    plain = to_plain(text)
    if hints:
        commands = [f"!{button.command_line[1:]}" for button in hints]
        html += "<br/>" + " · ".join(f"<code>{escape(line)}</code>" for line in commands)
        plain += "\n" + " · ".join(commands)
    return TextMessageEventContent(
        msgtype=msgtype, body=plain, format=Format.HTML, formatted_body=html
    )


def _buttons(
    rows: tuple[tuple[Button, ...], ...],
) -> tuple[list[tuple[str, Button]], list[Button]]:
    """Split buttons into reactions (labels that start with an emoji) and command hints."""
    reactions: list[tuple[str, Button]] = []
    hints: list[Button] = []
    for button in (button for row in rows for button in row):
        first = button.label[:1]
        if first and unicodedata.category(first) == "So" and first not in dict(reactions):
            reactions.append((first, button))
        else:
            hints.append(button)
    return reactions, hints


def _without_reply_fallback(body: str) -> str:
    # Replies quote the original in lines starting with "> ", then a blank line.
    lines = body.split("\n")
    while lines and lines[0].startswith("> "):
        lines.pop(0)
    if lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _sync_filter() -> Filter:
    # Only what the bot acts on, and enough timeline per room for a burst of commands.
    return Filter(
        room=RoomFilter(
            timeline=RoomEventFilter(limit=100),
            state=StateFilter(lazy_load_members=False),
        ),
    )
