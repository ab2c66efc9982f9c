"""Tests of the Matrix harness itself: the real Synapse and two members who really encrypt."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from mautrix.api import Method
from mautrix.api import Path as ApiPath
from mautrix.types import EventID, RoomID

from tests.matrix_fixtures import MakeAccount, MakeMember
from tests.matrix_member import MatrixMember
from tests.synapse import Synapse


async def raw_event(member: MatrixMember, room_id: RoomID, event_id: EventID) -> dict[str, Any]:
    """The event as the server stores it, without the member's decryption."""
    path = ApiPath.v3.rooms[room_id].event[event_id]
    event: dict[str, Any] = await member.client.api.request(Method.GET, path)
    return event


async def two_in_a_room(
    make_member: MakeMember, *, encrypted: bool = True
) -> tuple[MatrixMember, MatrixMember, RoomID]:
    """Anna and Ben, both joined: an encrypted direct chat, or a plain room."""
    anna = await make_member("anna")
    ben = await make_member("ben")
    if encrypted:
        room_id = await anna.create_dm(ben.user_id)
    else:
        room_id = await anna.create_room([ben.user_id], encrypted=False)
    await ben.join(room_id)
    await anna.wait_joined(room_id, ben.user_id)
    return anna, ben, room_id


async def send_burst(synapse: Synapse, token: str, count: int) -> list[tuple[int, Any]]:
    """Send up to count messages into a new room at once, stopping at the first 429."""
    # Synapse holds each 429 back for half a second; one is enough to see.
    answers: list[tuple[int, Any]] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{synapse.url}/_matrix/client/v3/createRoom", json={"preset": "private_chat"}
        ) as response:
            assert response.status == 200, await response.text()
            room_id = (await response.json())["room_id"]
        for number in range(count):
            url = f"{synapse.url}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/t{number}"
            body = {"msgtype": "m.text", "body": f"message {number}"}
            async with session.put(url, json=body) as response:
                answers.append((response.status, await response.json()))
            if response.status == 429:
                break
    return answers


async def test_registered_user_is_logged_in_with_a_device(
    synapse: Synapse, make_matrix_account: MakeAccount
) -> None:
    account = await make_matrix_account("anna")

    headers = {"Authorization": f"Bearer {account.access_token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{synapse.url}/_matrix/client/v3/account/whoami") as response,
    ):
        whoami = await response.json()

    assert account.user_id == f"@{account.username}:localhost"
    assert whoami == {
        "user_id": account.user_id,
        "device_id": account.device_id,
        "is_guest": False,
    }


async def test_registering_the_same_name_twice_fails(synapse: Synapse) -> None:
    name = f"twice-{secrets.token_hex(4)}"
    await synapse.register(name, "password-one")

    with pytest.raises(RuntimeError, match="M_USER_IN_USE"):
        await synapse.register(name, "password-two")


async def test_encrypted_dm_arrives_encrypted_and_is_decrypted(
    make_matrix_member: MakeMember,
) -> None:
    anna, ben, room_id = await two_in_a_room(make_matrix_member)

    event_id = await anna.send_text(room_id, "hallo")
    message = await ben.next_message(room_id, sender=anna.user_id)

    assert (message.event_id, message.body, message.msgtype) == (event_id, "hallo", "m.text")
    assert message.encrypted
    stored = await raw_event(ben, room_id, event_id)
    assert stored["type"] == "m.room.encrypted"
    assert "hallo" not in str(stored["content"])


async def test_encrypted_reply_carries_html(make_matrix_member: MakeMember) -> None:
    anna, ben, room_id = await two_in_a_room(make_matrix_member)
    await anna.send_text(room_id, "hallo")
    await ben.next_message(room_id)

    await ben.send_text(room_id, "Moin *Anna*", html="Moin <b>Anna</b>")
    reply = await anna.next_message(room_id, sender=ben.user_id)

    assert reply.encrypted
    assert (reply.body, reply.formatted_body) == ("Moin *Anna*", "Moin <b>Anna</b>")


async def test_unencrypted_room_works_in_the_clear(make_matrix_member: MakeMember) -> None:
    anna, ben, room_id = await two_in_a_room(make_matrix_member, encrypted=False)

    event_id = await anna.send_text(room_id, "hallo")
    message = await ben.next_message(room_id, sender=anna.user_id)

    assert (message.body, message.encrypted) == ("hallo", False)
    assert (await raw_event(ben, room_id, event_id))["type"] == "m.room.message"


async def test_reaction_is_encrypted_with_its_relation_in_the_clear(
    make_matrix_member: MakeMember,
) -> None:
    anna, ben, room_id = await two_in_a_room(make_matrix_member)
    event_id = await anna.send_text(room_id, "Treffen am Freitag?")

    reaction_id = await ben.react(room_id, event_id, "👍")

    stored = await raw_event(anna, room_id, reaction_id)
    assert stored["type"] == "m.room.encrypted"
    assert "ciphertext" in stored["content"]
    relation = {"rel_type": "m.annotation", "event_id": event_id, "key": "👍"}
    assert stored["content"]["m.relates_to"] == relation


async def test_burst_arrives_in_order_and_is_counted_with_messages(
    make_matrix_member: MakeMember,
) -> None:
    anna, ben, room_id = await two_in_a_room(make_matrix_member)

    for number in range(25):
        await anna.send_text(room_id, f"Nachricht {number}")
    received = [(await ben.next_message(room_id)).body for _ in range(25)]

    assert received == [f"Nachricht {number}" for number in range(25)]
    assert await ben.count_messages(room_id, sender=anna.user_id) == 25
    history = await ben.history(room_id, sender=anna.user_id)
    assert all(message.encrypted for message in history)


async def test_messages_sent_while_offline_are_decrypted_on_return(
    make_matrix_member: MakeMember,
) -> None:
    anna, ben, room_id = await two_in_a_room(make_matrix_member)
    await ben.stop()

    for text in ("eins", "zwei", "drei"):
        await anna.send_text(room_id, text)
    await ben.start()

    # The room key and the messages now come in one sync, handled concurrently.
    received = [await ben.next_message(room_id) for _ in range(3)]
    assert [(message.body, message.encrypted) for message in received] == [
        ("eins", True),
        ("zwei", True),
        ("drei", True),
    ]


async def test_next_message_times_out_with_who_was_awaited(
    make_matrix_member: MakeMember,
) -> None:
    anna = await make_matrix_member("anna")
    room_id = await anna.create_room([], encrypted=False)

    with pytest.raises(TimeoutError, match="No message from anyone"):
        await anna.next_message(room_id, within=0.2)


async def test_default_message_limit_answers_limit_exceeded(
    synapse_default_limits: Synapse,
) -> None:
    name = f"burst-{secrets.token_hex(4)}"
    _, token, _ = await synapse_default_limits.register(name, "burst-password")

    answers = await send_burst(synapse_default_limits, token, 15)

    # Creating the room took one of the burst of ten.
    assert [status for status, _ in answers] == [200] * 9 + [429]
    assert answers[-1][1]["errcode"] == "M_LIMIT_EXCEEDED"
    assert answers[-1][1]["retry_after_ms"] > 0


async def test_message_limit_of_one_user_on_the_shared_server(
    synapse: Synapse, make_matrix_account: MakeAccount
) -> None:
    limited_user = await make_matrix_account("limited")
    free_user = await make_matrix_account("free")
    await synapse.limit_messages(limited_user.user_id, per_second=1, burst_count=3)

    limited = await send_burst(synapse, limited_user.access_token, 8)
    free = await send_burst(synapse, free_user.access_token, 8)

    assert [status for status, _ in limited] == [200, 200, 429]
    assert limited[-1][1]["errcode"] == "M_LIMIT_EXCEEDED"
    assert [status for status, _ in free] == [200] * 8


def test_start_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]

        with pytest.raises(RuntimeError, match="taken"):
            Synapse.launch(tmp_path / "synapse", port=port)
