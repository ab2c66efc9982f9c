"""The database engine, its sessions and its schema version."""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import StaticPool

from storage.search import add_sql_functions

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaState(enum.Enum):
    """How a database's schema compares with the code's migrations."""

    EMPTY = "empty"
    CURRENT = "current"
    BEHIND = "behind"
    UNKNOWN = "unknown"


class DatabaseError(Exception):
    """The database cannot be used as it is; the message says what to do."""


def create_engine(url: str) -> AsyncEngine:
    """Create the process's engine; SQLite gets WAL, foreign keys and real transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _create_async_engine(url, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    if not memory and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # One connection: the process's units of work queue for it in order, instead of
    # meeting SQLite's file lock and its busy-wait sleeps. Other processes (an import
    # beside a running bot) still wait on the lock, within the busy timeout.
    kwargs: dict[str, Any] = (
        {"poolclass": StaticPool} if memory else {"pool_size": 1, "max_overflow": 0}
    )
    engine = _create_async_engine(url, **kwargs)
    _use_sqlite_pragmas(engine, wal=not memory)
    return engine


def _use_sqlite_pragmas(engine: AsyncEngine, *, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself, so DDL and savepoints are transactional.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA cache_size=-32000")  # 32 MB instead of 2 MB
        cursor.close()
        add_sql_functions(dbapi_connection)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front: concurrent units of work queue up
        # instead of failing when a read turns into a write.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def dialect_name(session: AsyncSession) -> str:
    """Return the name of the database dialect a session talks to, such as ``sqlite``."""
    return session.get_bind().dialect.name


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the process's one session factory."""
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
        return await connection.run_sync(_state)


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Apply all migrations the database does not have yet."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def open_database(url: str) -> AsyncEngine:
    """Open the database, creating and migrating a new one; refuse one that is behind."""
    engine = create_engine(url)
    try:
        state = await schema_state(engine)
        if state is SchemaState.EMPTY:
            logger.info("new database: creating the schema")
            await upgrade(engine)
        elif state is SchemaState.BEHIND:
            raise DatabaseError(
                "the database schema is older than this version of Klimabot; "
                "run `klimabot db upgrade` (after `klimabot backup PATH`)"
            )
        elif state is SchemaState.UNKNOWN:
            raise DatabaseError(
                "the database was not created by this version of Klimabot "
                "(unknown schema revision or foreign tables)"
            )
    except BaseException:
        await engine.dispose()
        raise
    return engine


async def backup(engine: AsyncEngine, target: Path) -> None:
    """Write a consistent copy of a live SQLite database to a new file."""
    if target.exists():
        raise DatabaseError(f"{target} exists already; choose a new file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    async with engine.connect() as connection:
        # VACUUM cannot run inside a transaction, so it goes to the driver directly.
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("VACUUM INTO ?", (str(target),))
