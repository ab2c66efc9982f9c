"""The database: its engines, units of work, schema version and backups."""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, inspect
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from storage.search import add_sql_functions

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_BUSY_TIMEOUT = 30.0  # seconds a unit that writes waits for another process's lock
READERS = 4  # connections for units that only read
SQLITE_HEADER = b"SQLite format 3\x00"
OWNER_ONLY = 0o600
# The execution option of a connection that only reads: a deferred transaction, no lock taken.
READ_ONLY = "klimabot_reads_only"
T = TypeVar("T")


def N_(message: str) -> str:
    """Mark a message for translation; the bot translates it where it is shown."""
    return message


# What the operator reads, in English; the bot shows it in the operator's language.
MESSAGES: dict[str, str] = {
    "memory": N_(
        "{database}: an in-memory database loses everything when the command ends; "
        "set database.url to a file such as sqlite+aiosqlite:///klimabot.db"
    ),
    "no_folder": N_(
        "{database}: the folder {folder} does not exist; create it or correct database.url"
    ),
    "folder_read_only": N_(
        "{database}: the folder {folder} is read-only for this user; SQLite keeps "
        "working files beside the database, so make the folder writable"
    ),
    "file_read_only": N_(
        "{database}: the file is read-only for this user; make it writable (chmod u+rw)"
    ),
    "not_sqlite": N_(
        "{database}: this file is not a SQLite database; correct database.url "
        "or move the file away"
    ),
    "behind": N_(
        "{database}: the database schema is older than this version of Klimabot; "
        "run `klimabot db upgrade` (after `klimabot backup PATH`)"
    ),
    "unknown": N_(
        "{database}: the database was not created by this version of Klimabot "
        "(unknown schema revision or foreign tables)"
    ),
    "locked": N_(
        "{database}: another process holds the database's write lock; "
        "try again when it has finished"
    ),
    "unusable": N_("{database}: the database cannot be used: {error}"),
    "missing": N_("{database}: there is no database yet, so there is nothing to copy"),
    "backup_exists": N_("{target} exists already; choose a new file name"),
    "backup_failed": N_("{target}: the backup cannot be written: {error}"),
    "backup_sqlite_only": N_(
        "{database}: `klimabot backup` copies SQLite databases; use the database's own "
        "backup tool (such as pg_dump)"
    ),
}


class SchemaState(enum.Enum):
    """How a database's schema compares with the code's migrations."""

    EMPTY = "empty"
    CURRENT = "current"
    BEHIND = "behind"
    UNKNOWN = "unknown"


class DatabaseError(Exception):
    """The database cannot be used as it is; the message says what to do."""

    def __init__(self, code: str, **detail: object) -> None:
        self.code = code
        self.detail: Mapping[str, object] = detail
        super().__init__(self.message())

    def message(self, template: str | None = None) -> str:
        """Return the message, from a translated template if one is given."""
        return (template or MESSAGES[self.code]).format(**self.detail)


class WriteNeeded(Exception):
    """A unit of work begun as a reader tried to write: run it again as a writer."""


def shown(url: str | URL) -> str:
    """Return a database URL as the operator may see it: the file, or the URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


def sqlite_file(url: str | URL) -> Path | None:
    """Return the file of a SQLite URL, or None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
        raise DatabaseError("memory", database=str(parsed))
    return Path(parsed.database)


def check_file(url: str | URL) -> bool:
    """Refuse a SQLite file the bot could not use; return whether it exists already."""
    path = sqlite_file(url)
    if path is None:
        return True
    folder = path.parent
    if not folder.is_dir():
        raise DatabaseError("no_folder", database=path, folder=folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseError("folder_read_only", database=path, folder=folder)
    if not path.exists():
        return False
    if not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseError("file_read_only", database=path)
    with path.open("rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise DatabaseError("not_sqlite", database=path)
    return True


def create_owner_only(path: Path) -> None:
    """Create an empty file only the owner may read, whatever the umask; refuse an existing one."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    try:
        os.fchmod(descriptor, OWNER_ONLY)
    finally:
        os.close(descriptor)


def create_engine(url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> AsyncEngine:
    """Create the process's engine for units that write: SQLite gets one connection.

    With one connection the process's own writers queue for it in order instead of meeting
    SQLite's lock and its busy-wait sleeps; other processes' writers are waited for within
    the busy timeout, and so is the queue.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _create_async_engine(url, pool_pre_ping=True)
    sqlite_file(parsed)  # refuses an in-memory database
    engine = _create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=busy_timeout)
    _use_sqlite_pragmas(engine, busy_timeout=busy_timeout, reader=False)
    return engine


def create_reader_engine(
    engine: AsyncEngine, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> AsyncEngine | None:
    """Return an engine for units that only read, beside the writers' one; None if not needed.

    Its connections begin deferred transactions and refuse to write, so a read never waits
    for a writer (SQLite's WAL lets readers go on), and a unit that tries to write fails at
    once with WriteNeeded instead of holding a connection while it waits for the lock.
    """
    if engine.dialect.name != "sqlite":
        return None  # other databases let readers go on by themselves
    return _sqlite_readers(engine.url, busy_timeout)


def _sqlite_readers(url: str | URL, busy_timeout: float) -> AsyncEngine:
    reader = _create_async_engine(url, pool_size=READERS, max_overflow=0)
    _use_sqlite_pragmas(reader, busy_timeout=busy_timeout, reader=True)

    @event.listens_for(reader.sync_engine, "handle_error")
    def _write_needed(context: ExceptionContext) -> None:
        original = context.original_exception
        if getattr(original, "sqlite_errorname", "") == "SQLITE_READONLY":
            raise WriteNeeded from original

    return reader


def _use_sqlite_pragmas(engine: AsyncEngine, *, busy_timeout: float, reader: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so DDL and savepoints are transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not reader:
            cursor.execute("PRAGMA journal_mode=WAL")  # kept in the file; readers find it
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        cursor.execute("PRAGMA cache_size=-32000")  # 32 MB instead of 2 MB
        if reader:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()
        add_sql_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writer takes the lock before it reads, so what it read stays true until it
        # commits (a deferred one would fail at once if another process committed first).
        deferred = reader or connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def dialect_name(session: AsyncSession) -> str:
    """Return the name of the database dialect a session talks to, such as ``sqlite``."""
    return session.get_bind().dialect.name


async def read_or_write(
    readers: async_sessionmaker[AsyncSession],
    writers: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
) -> T:
    """Do a unit of work as a reader; if it must write, do it again as a writer. Commit."""
    try:
        async with readers() as session:
            result = await work(session)
            await session.commit()  # nothing for readers; kept where they are the writers
            return result
    except WriteNeeded:
        async with writers() as session:
            result = await work(session)
            await session.commit()
            return result


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return a session factory for an engine (the writers' or the readers')."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """Return an Alembic configuration that finds the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _state(connection: Connection) -> SchemaState:
    current = MigrationContext.configure(connection).get_current_heads()
    if not current:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        return SchemaState.EMPTY if not tables else SchemaState.UNKNOWN
    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    if set(current) == heads:
        return SchemaState.CURRENT
    known = {rev.revision for rev in script.walk_revisions()}
    return SchemaState.BEHIND if set(current) <= known else SchemaState.UNKNOWN


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Tell whether the database is empty, current, behind the code, or unknown to it."""
    async with engine.connect() as connection:
        # Only reads: a write lock held by another process does not stop it.
        await connection.execution_options(**{READ_ONLY: True})
        return await connection.run_sync(_state)


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Apply all migrations the database does not have yet."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def explain(error: BaseException, url: str | URL) -> DatabaseError:
    """Turn what the driver raised while opening a database into one line for the operator."""
    original = error.orig if isinstance(error, DBAPIError) else error
    name = getattr(original, "sqlite_errorname", "")
    database = shown(url)
    if name == "SQLITE_NOTADB":
        return DatabaseError("not_sqlite", database=database)
    if name == "SQLITE_BUSY":
        return DatabaseError("locked", database=database)
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return DatabaseError("file_read_only", database=database)
    reason = str(original).strip().splitlines()[0] if str(original).strip() else repr(original)
    return DatabaseError("unusable", database=database, error=reason)


def prepare(url: str) -> bool:
    """Check a database before it is opened, creating a missing SQLite file for the owner only.

    Return whether the file was created now.
    """
    if check_file(url):
        return False
    path = sqlite_file(url)
    assert path is not None
    with contextlib.suppress(FileExistsError):  # another process was faster
        create_owner_only(path)
        return True
    return False


async def open_new_or_existing(
    url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT
) -> tuple[AsyncEngine, bool]:
    """Open the database, creating and migrating a new one; refuse one that is behind.

    Return the engine and whether the database was created now.
    """
    created = prepare(url)
    engine = create_engine(url, busy_timeout=busy_timeout)
    try:
        try:
            state = await schema_state(engine)
            if state is SchemaState.EMPTY:
                logger.info("new database: creating the schema")
                await upgrade(engine)
        except (DBAPIError, OSError, sqlite3.Error) as error:
            raise explain(error, url) from error
        if state is SchemaState.BEHIND:
            raise DatabaseError("behind", database=shown(url))
        if state is SchemaState.UNKNOWN:
            raise DatabaseError("unknown", database=shown(url))
    except BaseException:
        await engine.dispose()
        raise
    return engine, created


async def open_database(url: str, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> AsyncEngine:
    """Open the database, creating and migrating a new one; refuse one that is behind."""
    engine, _created = await open_new_or_existing(url, busy_timeout=busy_timeout)
    return engine


async def inspect_database(url: str) -> SchemaState | None:
    """Find what would stop the bot from using a database, creating nothing.

    Return the schema state, or None when the SQLite file does not exist yet.
    """
    if not check_file(url):
        return None
    # A reader changes nothing, not even the journal mode, and waits for no writer.
    reading = sqlite_file(url) is not None
    engine = _sqlite_readers(url, 1) if reading else create_engine(url)
    try:
        return await schema_state(engine)
    except (DBAPIError, OSError, sqlite3.Error) as error:
        raise explain(error, url) from error
    finally:
        await engine.dispose()


async def backup(url: str, target: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
    """Write a consistent copy of a live SQLite database, whatever its schema, to a new file."""
    path = sqlite_file(url)
    if path is None:
        raise DatabaseError("backup_sqlite_only", database=shown(url))
    if not check_file(url):
        raise DatabaseError("missing", database=path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # VACUUM INTO writes into an empty file, so the copy keeps the owner-only mode.
        create_owner_only(target)
    except FileExistsError as error:
        raise DatabaseError("backup_exists", target=target) from error
    except OSError as error:
        raise DatabaseError("backup_failed", target=target, error=error.strerror) from error
    engine = create_engine(url, busy_timeout=busy_timeout)
    try:
        async with engine.connect() as connection:
            # VACUUM cannot run inside a transaction, so it goes to the driver directly.
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("VACUUM INTO ?", (str(target),))
    except (DBAPIError, OSError, sqlite3.Error) as error:
        target.unlink(missing_ok=True)
        raise explain(error, url) from error
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        await engine.dispose()
