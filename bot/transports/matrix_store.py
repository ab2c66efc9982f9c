"""The Matrix crypto store at rest: its folder and files owner-only, its pickle key secret.

mautrix keeps the bot's olm account and sessions in ``matrix.db`` as pickles encrypted with a
key. The key is the operator's ``KLIMABOT_MATRIX_PICKLE_KEY`` where set, else one generated once
and kept in ``pickle-key`` beside the store. A store encrypted with another known key (an older
``pickle-key``, or the constant that earlier versions used) is re-encrypted once at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

from olm.account import Account, OlmAccountError
from olm.group_session import InboundGroupSession, OutboundGroupSession
from olm.session import Session

from bot.i18n import _
from bot.transports.reconnect import CannotServe

logger = logging.getLogger(__name__)

STORE = "matrix.db"
KEY_FILE = "pickle-key"
# The key of every store created before the key became a secret: known to all, so replaced.
LEGACY_KEY = "klimabot-olm-pickles"
# (table, column, olm class) of everything mautrix pickles with the key.
PICKLED: tuple[tuple[str, str, Any], ...] = (
    ("crypto_account", "account", Account),
    ("crypto_olm_session", "session", Session),
    ("crypto_megolm_inbound_session", "session", InboundGroupSession),
    ("crypto_megolm_outbound_session", "session", OutboundGroupSession),
)


def prepare_store(folder: Path, provided: str | None) -> str:
    """Make the folder and store owner-only and return the key the store is encrypted with."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    store, key_file = folder / STORE, folder / KEY_FILE
    saved = key_file.read_text(encoding="utf-8").strip() if key_file.exists() else None
    key = provided or saved or secrets.token_urlsafe(32)
    current = _current_key(store, (key, saved, LEGACY_KEY)) if store.exists() else ""
    if current is None:
        raise CannotServe(
            _(
                "The Matrix crypto store {path} is encrypted with another key: set "
                "KLIMABOT_MATRIX_PICKLE_KEY to the key it was created with."
            ).format(path=store)
        )
    if not provided and saved != key:
        # Kept before the store is re-encrypted with it, so a crash in between loses nothing.
        _write_owner_only(key_file, key)
    if current and current != key:
        _rekey(store, current, key)
        logger.info("Matrix: the crypto store %s is encrypted with a new key", store)
    if not store.exists():
        os.close(os.open(store, os.O_CREAT | os.O_WRONLY, 0o600))
    for path in (store, *folder.glob(f"{STORE}-*"), folder / "session.json"):
        with contextlib.suppress(FileNotFoundError):
            path.chmod(0o600)  # SQLite gives its -wal and -shm files the store's mode
    if provided and key_file.exists():
        key_file.unlink()  # the operator keeps the key now; none stays beside the store
    return key


def _write_owner_only(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(descriptor, 0o600)
        file.write(text)


def _current_key(store: Path, candidates: tuple[str | None, ...]) -> str | None:
    """Return the candidate that opens the stored account, "" if none is stored, else None."""
    with contextlib.closing(sqlite3.connect(store)) as database:
        try:
            row = database.execute("SELECT account FROM crypto_account LIMIT 1").fetchone()
        except sqlite3.OperationalError:
            return ""  # a store whose tables mautrix has not created yet
    if row is None:
        return ""
    for key in candidates:
        if key is None:
            continue
        try:
            Account.from_pickle(_bytes(row[0]), key)
        except OlmAccountError:
            continue
        return key
    return None


def _rekey(store: Path, old: str, new: str) -> None:
    """Re-encrypt every pickle of the store with the new key, all or nothing."""
    with contextlib.closing(sqlite3.connect(store)) as database, database:
        for table, column, kind in PICKLED:
            try:
                rows = database.execute(f"SELECT rowid, {column} FROM {table}").fetchall()
            except sqlite3.OperationalError:
                continue
            for rowid, pickle in rows:
                if pickle is None:
                    continue
                fresh = kind.from_pickle(_bytes(pickle), old).pickle(new)
                database.execute(
                    f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (fresh, rowid)
                )


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)
