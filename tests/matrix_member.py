"""A member's Element-like Matrix client for tests, built on mautrix: it really encrypts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from mautrix.api import Method
from mautrix.api import Path as ApiPath
from mautrix.client import Client, InternalEventType
from mautrix.client.encryption_manager import DecryptionDispatcher
from mautrix.client.state_store import MemoryStateStore
from mautrix.crypto import OlmMachine
from mautrix.crypto.store import MemoryCryptoStore
from mautrix.crypto.store import StateStore as CryptoStateStore
from mautrix.errors import DecryptionError, MNotFound, SessionNotFound
from mautrix.types import (
    EncryptedEvent,
    EncryptedMegolmEventContent,
    EncryptionAlgorithm,
    Event,
    EventID,
    EventType,
    Filter,
    Membership,
    MemberStateEventContent,
    MessageEvent,
    RoomCreatePreset,
    RoomEncryptionStateEventContent,
    RoomEventFilter,
    RoomFilter,
    RoomID,
    UserID,
)

from tests.synapse import Synapse

MEGOLM = {"algorithm": EncryptionAlgorithm.MEGOLM_V1.value}
HISTORY_PAGE = 1000
# Synapse sends 10 timeline events a room by default; a burst of replies must not be cut.
SYNC_FILTER = Filter(room=RoomFilter(timeline=RoomEventFilter(limit=1000)))
ROOM_KEY_WAIT = 5.0
DEVICE_WAIT = 5.0
_room_names = itertools.count(1)


class UndecryptableMessageError(Exception):
    """A message that arrived encrypted, but whose megolm key never reached the member."""


@dataclass(frozen=True)
class ReceivedMessage:
    """An m.room.message as the member's client shows it, after decryption."""

    room_id: RoomID
    event_id: EventID
    sender: UserID
    msgtype: str
    body: str
    formatted_body: str | None
    encrypted: bool
    content: dict[str, Any]


@dataclass
class _Arrival:
    sender: UserID
    message: asyncio.Future[ReceivedMessage | None]
    taken: bool = False


class MemberStateStore(MemoryStateStore):
    """The room state a member's client keeps in memory."""

    def mark_encryption(self, room_id: RoomID, *, encrypted: bool) -> None:
        """Remember whether a room is encrypted, as known without a state event at hand."""
        self.encryption[room_id] = (
            RoomEncryptionStateEventContent(EncryptionAlgorithm.MEGOLM_V1) if encrypted else None
        )


@dataclass
class _CryptoState(CryptoStateStore):
    """What the OlmMachine asks of the member's room state."""

    rooms: MemberStateStore

    async def is_encrypted(self, room_id: RoomID) -> bool:
        return bool(await self.rooms.is_encrypted(room_id))

    async def get_encryption_info(self, room_id: RoomID) -> RoomEncryptionStateEventContent | None:
        return await self.rooms.get_encryption_info(room_id)

    async def find_shared_rooms(self, user_id: UserID) -> list[RoomID]:
        shared = (Membership.JOIN, Membership.INVITE)
        return [
            room_id
            for room_id, members in self.rooms.members.items()
            if user_id in members and members[user_id].membership in shared
        ]


@dataclass
class MatrixMember:
    """One member with one device, syncing and decrypting like Element does."""

    client: Client
    crypto: OlmMachine
    rooms: MemberStateStore
    session: aiohttp.ClientSession
    password: str
    _inbox: defaultdict[RoomID, list[_Arrival]] = field(default_factory=lambda: defaultdict(list))
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _synced: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    _sync_task: asyncio.Future[Any] | None = None

    @property
    def user_id(self) -> UserID:
        """The member's Matrix ID."""
        return self.client.mxid

    @property
    def device_id(self) -> str:
        """The member's one device."""
        return str(self.client.device_id)

    @classmethod
    async def login(
        cls, synapse: Synapse, username: str, *, password: str | None = None, sync: bool = True
    ) -> MatrixMember:
        """Register username, set up its device keys and start syncing unless sync is False."""
        password = password or secrets.token_urlsafe(12)
        user_id, token, device_id = await synapse.register(username, password)
        session = aiohttp.ClientSession()
        state_store = MemberStateStore()
        crypto_store = MemoryCryptoStore(account_id=user_id, pickle_key="klimabot-tests")
        client = Client(
            mxid=UserID(user_id),
            device_id=device_id,
            base_url=synapse.url,
            token=token,
            client_session=session,
            state_store=state_store,
            sync_store=crypto_store,
        )
        crypto = OlmMachine(client, crypto_store, _CryptoState(state_store))
        member = cls(client, crypto, state_store, session, password)
        try:
            await crypto.load()
            client.crypto = crypto
            # Decryption is the member's own, so that a key arriving late is waited for.
            client.remove_dispatcher(DecryptionDispatcher)
            # Element encrypts reactions too; mautrix leaves them in the clear by default.
            client.encryption_blacklist = set()
            await crypto.share_keys()
            client.add_event_handler(EventType.ROOM_MESSAGE, member._on_message)
            client.add_event_handler(EventType.ROOM_ENCRYPTED, member._on_encrypted)
            client.add_event_handler(InternalEventType.SYNC_SUCCESSFUL, member._on_synced)
            if sync:
                await member.start()
        except BaseException:
            await member.close()
            raise
        return member

    async def start(self) -> None:
        """Start the sync loop and wait for its first answer."""
        if self._sync_task is not None:
            return
        self._synced.clear()
        self._sync_task = self.client.start(SYNC_FILTER)
        await asyncio.wait_for(self._synced.wait(), 10)

    async def stop(self) -> None:
        """Stop the sync loop; what arrived so far stays readable."""
        task, self._sync_task = self._sync_task, None
        if task is None:
            return
        self.client.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close(self) -> None:
        """Stop syncing, cancel pending decryptions and close the HTTP session."""
        await self.stop()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self.session.close()

    async def create_room(
        self,
        invite: list[str],
        *,
        encrypted: bool = True,
        is_direct: bool = False,
        name: str | None = None,
    ) -> RoomID:
        """Create a private room that invites the given users, with megolm unless told not to."""
        initial_state = [{"type": "m.room.encryption", "state_key": "", "content": MEGOLM}]
        room_id = await self.client.create_room(
            preset=RoomCreatePreset.TRUSTED_PRIVATE if is_direct else RoomCreatePreset.PRIVATE,
            name=name or (None if is_direct else f"Room {next(_room_names)}"),
            is_direct=is_direct,
            invitees=[UserID(user_id) for user_id in invite],
            initial_state=initial_state if encrypted else [],
        )
        self.rooms.mark_encryption(room_id, encrypted=encrypted)
        return room_id

    async def create_dm(self, user_id: str, *, encrypted: bool = True) -> RoomID:
        """Open a direct chat with user_id the way Element does: is_direct, m.direct, megolm."""
        room_id = await self.create_room([user_id], encrypted=encrypted, is_direct=True)
        await self.client.set_account_data(EventType.DIRECT, {UserID(user_id): [room_id]})
        return room_id

    async def join(self, room_id: str) -> None:
        """Join a room, for example after an invitation."""
        await self.client.join_room(RoomID(room_id))

    async def wait_joined(self, room_id: str, user_id: str, *, within: float = 10.0) -> None:
        """Wait until user_id has joined room_id, as the server tells it."""
        await self.wait_membership(room_id, user_id, Membership.JOIN, within=within)

    async def wait_membership(
        self, room_id: str, user_id: str, membership: Membership, *, within: float = 10.0
    ) -> None:
        """Wait until user_id's membership of room_id is the given one, as the server tells it."""
        # The server is asked, not the sync stream, so a change is seen however syncs interleave.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await self._membership(room_id, user_id) != membership:
            if loop.time() > deadline:
                raise TimeoutError(f"{user_id} did not {membership} {room_id} in {within} s")
            await asyncio.sleep(0.05)

    async def _membership(self, room_id: str, user_id: str) -> Membership | None:
        try:
            content = await self.client.get_state_event(
                RoomID(room_id), EventType.ROOM_MEMBER, state_key=user_id
            )
        except MNotFound:
            return None
        return content.membership if isinstance(content, MemberStateEventContent) else None

    async def send_text(
        self,
        room_id: str,
        text: str,
        *,
        html: str | None = None,
        wait_for_devices: bool = True,
    ) -> EventID:
        """Send an m.text message; in an encrypted room, first wait for the others' devices."""
        if wait_for_devices and await self._is_encrypted(room_id):
            await self._learn_devices(room_id)
        return await self.client.send_text(RoomID(room_id), text, html=html)

    async def react(self, room_id: str, event_id: str, key: str) -> EventID:
        """React to an event with key; encrypted in encrypted rooms, as Element does."""
        if await self._is_encrypted(room_id):
            await self._learn_devices(room_id)
        return await self.client.react(RoomID(room_id), EventID(event_id), key)

    async def next_message(
        self, room_id: str, *, sender: str | None = None, within: float = 10.0
    ) -> ReceivedMessage:
        """Return the next unread message from sender (anyone but the member if None)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    for arrival in self._inbox[RoomID(room_id)]:
                        if arrival.taken or not self._wanted(arrival.sender, sender):
                            continue
                        try:
                            # Shielded: a timeout here must not cancel a decryption under way.
                            message = await asyncio.shield(arrival.message)
                        finally:
                            arrival.taken = arrival.message.done()
                        if message is not None:
                            return message
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            who = sender or "anyone"
            raise TimeoutError(f"No message from {who} in {room_id} in {within} s") from None

    async def history(self, room_id: str, *, sender: str | None = None) -> list[ReceivedMessage]:
        """Read the room's messages from the server with /messages, oldest first, decrypted."""
        raw_events: list[dict[str, Any]] = []
        query = {"dir": "b", "limit": str(HISTORY_PAGE)}
        while True:
            path = ApiPath.v3.rooms[room_id].messages
            page = await self.client.api.request(Method.GET, path, query_params=query)
            raw_events.extend(page["chunk"])
            if not page["chunk"] or "end" not in page:
                break
            query["from"] = page["end"]
        messages = []
        for raw in reversed(raw_events):
            if sender is not None and raw["sender"] != sender:
                continue
            if raw["type"] == EventType.ROOM_MESSAGE.t:
                messages.append(self._message(MessageEvent.deserialize(raw), encrypted=False))
            elif raw["type"] == EventType.ROOM_ENCRYPTED.t:
                message = await self._read(EncryptedEvent.deserialize(raw))
                if message is not None:
                    messages.append(message)
        return messages

    async def count_messages(self, room_id: str, *, sender: str) -> int:
        """Count sender's messages in the room as the server stores them (/messages)."""
        return len(await self.history(room_id, sender=sender))

    def _wanted(self, actual: UserID, sender: str | None) -> bool:
        return actual == sender if sender is not None else actual != self.user_id

    async def _is_encrypted(self, room: str) -> bool:
        room_id = RoomID(room)
        encrypted = await self.rooms.is_encrypted(room_id)
        if encrypted is None:
            state = await self.client.get_state(room_id)
            encrypted = any(event.type == EventType.ROOM_ENCRYPTION for event in state)
            self.rooms.mark_encryption(room_id, encrypted=encrypted)
        return encrypted

    async def _learn_devices(self, room: str) -> None:
        # Element asks /keys/query about members it does not track yet; without that, the room
        # key of a peer that joined a moment ago would go to none of its devices.
        store = self.crypto.crypto_store
        joined = await self.client.get_joined_members(RoomID(room))
        others = [user for user in joined if user != self.user_id]
        for attempt in range(int(DEVICE_WAIT / 0.1)):
            unknown = [user for user in others if not await store.get_devices(user)]
            if not unknown:
                return
            if attempt:
                await asyncio.sleep(0.1)
            await self.crypto._fetch_keys(unknown, include_untracked=True)
        raise TimeoutError(f"{unknown} in {room} have no device keys after {DEVICE_WAIT} s")

    def _expect(self, room_id: RoomID, sender: UserID) -> asyncio.Future[ReceivedMessage | None]:
        # Called before the first await of a handler, so arrivals keep the timeline's order.
        future: asyncio.Future[ReceivedMessage | None] = asyncio.get_running_loop().create_future()
        self._inbox[room_id].append(_Arrival(sender, future))
        self._arrived.set()
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        return future

    async def _on_message(self, event: MessageEvent) -> None:
        future = self._expect(event.room_id, event.sender)
        future.set_result(self._message(event, encrypted=False))

    async def _on_encrypted(self, event: EncryptedEvent) -> None:
        future = self._expect(event.room_id, event.sender)
        try:
            message = await self._read(event)
        except UndecryptableMessageError as error:
            future.set_exception(error)
        except Exception as error:
            future.set_exception(UndecryptableMessageError(f"{event.event_id}: {error!r}"))
        else:
            future.set_result(message)
        finally:
            if not future.done():
                future.cancel()

    async def _on_synced(self, _: Any) -> None:
        self._synced.set()

    async def _read(self, event: EncryptedEvent) -> ReceivedMessage | None:
        decrypted = await self._decrypt(event)
        if not isinstance(decrypted, MessageEvent) or decrypted.type != EventType.ROOM_MESSAGE:
            return None
        return self._message(decrypted, encrypted=True)

    async def _decrypt(self, event: EncryptedEvent) -> Event:
        assert isinstance(event.content, EncryptedMegolmEventContent)
        try:
            return await self.crypto.decrypt_megolm_event(event)
        except SessionNotFound:
            # The room key travels as a to-device event and may come one sync later.
            await self.crypto.wait_for_session(
                event.room_id, event.content.session_id, ROOM_KEY_WAIT
            )
            try:
                return await self.crypto.decrypt_megolm_event(event)
            except DecryptionError as error:
                raise UndecryptableMessageError(f"{event.event_id}: {error}") from error
        except DecryptionError as error:
            raise UndecryptableMessageError(f"{event.event_id}: {error}") from error

    @staticmethod
    def _message(event: MessageEvent, *, encrypted: bool) -> ReceivedMessage:
        content: dict[str, Any] = event.content.serialize()
        return ReceivedMessage(
            room_id=event.room_id,
            event_id=event.event_id,
            sender=event.sender,
            msgtype=str(content.get("msgtype", "")),
            body=str(content.get("body", "")),
            formatted_body=content.get("formatted_body"),
            encrypted=encrypted,
            content=content,
        )
