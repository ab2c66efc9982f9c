"""The Matrix crypto store at rest: owner-only files, a secret key, older stores re-encrypted."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from mautrix.crypto import InboundGroupSession, OlmAccount, OutboundGroupSession, PgCryptoStore
from mautrix.types import IdentityKey, RoomID, SessionID, UserID
from mautrix.util.async_db import Database

from bot.transports.matrix_store import KEY_FILE, LEGACY_KEY, STORE, _rekey, prepare_store
from bot.transports.reconnect import CannotServe
from tests.bot_process import BotProcess
from tests.matrix_fixtures import MakeAccount, MakeMember
from tests.synapse import Synapse

ACCOUNT = "@klimabot:localhost"
ROOM = RoomID("!room:localhost")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def open_store(folder: Path, key: str) -> tuple[Database, PgCryptoStore]:
    """Open the store as the Matrix transport does, with mautrix's own store class."""
    database = Database.create(
        f"sqlite:{folder / STORE}", upgrade_table=PgCryptoStore.upgrade_table
    )
    await database.start()
    return database, PgCryptoStore(ACCOUNT, key, database)


@pytest.fixture
async def old_store(tmp_path: Path) -> tuple[Path, OlmAccount, SessionID]:
    """A store as earlier versions left it: the built-in key, an account and a room key."""
    folder = tmp_path / "matrix-data"
    folder.mkdir()
    database, store = await open_store(folder, LEGACY_KEY)
    account = OlmAccount()
    await store.put_account(account)
    outbound = OutboundGroupSession(ROOM)
    inbound = InboundGroupSession(
        outbound.session_key, account.signing_key, account.identity_key, ROOM
    )
    await store.put_group_session(ROOM, IdentityKey(account.identity_key), inbound.id, inbound)
    await store.add_outbound_group_session(outbound)
    await database.stop()
    return folder, account, SessionID(inbound.id)


async def readable_with(folder: Path, key: str, account: OlmAccount, session: SessionID) -> None:
    database, store = await open_store(folder, key)
    try:
        loaded = await store.get_account()
        assert loaded is not None
        assert loaded.identity_key == account.identity_key
        inbound = await store.get_group_session(ROOM, session)
        assert inbound is not None
        assert inbound.id == session
        assert await store.get_outbound_group_session(ROOM) is not None
    finally:
        await database.stop()


def test_a_new_store_gets_a_key_of_its_own_and_owner_only_files(tmp_path: Path) -> None:
    folder = tmp_path / "matrix-data"
    key = prepare_store(folder, None)
    assert key != LEGACY_KEY
    assert len(key) >= 32
    assert (folder / KEY_FILE).read_text(encoding="utf-8") == key
    assert (mode(folder), mode(folder / KEY_FILE), mode(folder / STORE)) == (0o700, 0o600, 0o600)
    assert prepare_store(folder, None) == key  # the same key on every start


def test_an_operators_key_stays_off_the_disk(tmp_path: Path) -> None:
    folder = tmp_path / "matrix-data"
    assert prepare_store(folder, "the operator's secret") == "the operator's secret"
    assert not (folder / KEY_FILE).exists()
    assert mode(folder / STORE) == 0o600


async def test_a_store_with_the_former_built_in_key_is_re_encrypted(
    old_store: tuple[Path, OlmAccount, SessionID],
) -> None:
    folder, account, session = old_store
    (folder / STORE).chmod(0o644)
    key = prepare_store(folder, None)
    assert key != LEGACY_KEY
    assert mode(folder / STORE) == 0o600
    await readable_with(folder, key, account, session)
    with pytest.raises(Exception, match="BAD_ACCOUNT_KEY"):
        await readable_with(folder, LEGACY_KEY, account, session)
    # Later the operator moves the key into the environment: re-encrypted once more.
    assert prepare_store(folder, "the operator's secret") == "the operator's secret"
    assert not (folder / KEY_FILE).exists()
    await readable_with(folder, "the operator's secret", account, session)


async def test_a_store_whose_key_is_lost_is_refused_with_the_remedy(
    old_store: tuple[Path, OlmAccount, SessionID],
) -> None:
    folder, account, session = old_store
    prepare_store(folder, "the operator's secret")
    with pytest.raises(CannotServe, match="KLIMABOT_MATRIX_PICKLE_KEY"):
        prepare_store(folder, "another secret")
    with pytest.raises(CannotServe, match="KLIMABOT_MATRIX_PICKLE_KEY"):
        prepare_store(folder, None)  # nor does it make a new key over the store
    await readable_with(folder, "the operator's secret", account, session)


async def test_the_bot_keeps_its_device_when_its_old_store_is_re_encrypted(
    tmp_path: Path,
    synapse: Synapse,
    make_matrix_account: MakeAccount,
    make_matrix_member: MakeMember,
) -> None:
    account = await make_matrix_account("klimabot")
    folder = tmp_path / "matrix-data"
    bot = BotProcess(
        tmp_path,
        f'matrix:\n  homeserver: {synapse.url}\n  user_id: "{account.user_id}"\n'
        f"  data_dir: {folder}\n",
        {"KLIMABOT_MATRIX_PASSWORD": account.password},
    )
    await bot.start()
    anna = await make_matrix_member("anna")
    room = await anna.create_dm(account.user_id)
    await anna.wait_joined(room, account.user_id, within=20)
    await anna.next_message(room, sender=account.user_id, within=20)
    assert await bot.stop() == 0
    device = json.loads((folder / "session.json").read_text(encoding="utf-8"))["device_id"]
    # As an earlier version left it: the built-in key, no key file.
    _rekey(folder / STORE, (folder / KEY_FILE).read_text(encoding="utf-8"), LEGACY_KEY)
    (folder / KEY_FILE).unlink()

    await bot.start()
    await anna.send_text(room, "!help")
    answer = await anna.next_message(room, sender=account.user_id, within=20)
    assert answer.body.startswith("Was ich kann")
    assert answer.encrypted
    assert await bot.stop() == 0
    assert json.loads((folder / "session.json").read_text(encoding="utf-8"))["device_id"] == device
    assert (folder / KEY_FILE).read_text(encoding="utf-8") != LEGACY_KEY
    assert mode(folder / KEY_FILE) == 0o600
    keys = await anna.client.query_keys([UserID(account.user_id)])
    assert list(keys.device_keys[UserID(account.user_id)]) == [device]
