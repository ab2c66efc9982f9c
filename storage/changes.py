"""Which tables have changed: what lets a cache of this process know that it is stale.

Every INSERT, UPDATE and DELETE that goes through the engine counts, once when it runs and
once more when its transaction commits, so a reader that took a stamp while a write was in
flight sees a new one afterwards. A DELETE may cascade through foreign keys, and SQL the
engine cannot attribute to a table may write anywhere: both count as a change to everything.
A plain INSERT only adds rows, so a cache of rows read before (such as the people dispatch
knows) may ask for a stamp that ignores new rows.
Writes by other processes (``klimabot import`` beside a running bot) do not pass through this
engine; :func:`watch_other_writers` notices them by SQLite's ``PRAGMA data_version``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, event
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

Stamp = tuple[int, ...]
# Statements that change no rows, sent as plain SQL (BEGIN IMMEDIATE, PRAGMAs, reads).
_READS = re.compile(r"\s*(SELECT|PRAGMA|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|EXPLAIN)\b", re.I)
_TOUCHED = "klimabot_touched_tables"
_DATA_VERSION = "klimabot_data_version"


class Changes:
    """Counters of the writes to each table, for caches that depend on some of them."""

    def __init__(self) -> None:
        self._writes: Counter[str] = Counter()
        self._rewrites: Counter[str] = Counter()  # writes that changed rows already there
        self._everything = 0

    def stamp(self, tables: Iterable[str], *, new_rows: bool = True) -> Stamp:
        """Return a stamp that stays equal as long as none of the tables changes.

        With ``new_rows=False`` rows added to the tables do not change it, only rows that
        were there before and changed or went.
        """
        counts = self._writes if new_rows else self._rewrites
        return (self._everything, *(counts[table] for table in tables))

    def wrote(self, table: str | None, *, new_rows_only: bool = False) -> None:
        """Count a write to one table, or to every table when it is not known which."""
        if table is None:
            self._everything += 1
            return
        self._writes[table] += 1
        if not new_rows_only:
            self._rewrites[table] += 1

    @classmethod
    def track(cls, engine: AsyncEngine) -> Changes:
        """Return the changes of an engine, counted from now on."""
        changes = cls()

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def _after_execute(
            connection: Connection,
            _cursor: Any,
            statement: str,
            _parameters: Any,
            context: ExecutionContext | None,
            _many: bool,
        ) -> None:
            if _READS.match(statement):
                return
            table, new_rows_only = _written(context, statement)
            changes.wrote(table, new_rows_only=new_rows_only)
            connection.info.setdefault(_TOUCHED, set()).add((table, new_rows_only))

        @event.listens_for(engine.sync_engine, "commit")
        def _on_commit(connection: Connection) -> None:
            for table, new_rows_only in connection.info.pop(_TOUCHED, ()):
                changes.wrote(table, new_rows_only=new_rows_only)

        @event.listens_for(engine.sync_engine, "rollback")
        def _on_rollback(connection: Connection) -> None:
            connection.info.pop(_TOUCHED, None)

        return changes


def _written(context: ExecutionContext | None, statement: str) -> tuple[str | None, bool]:
    """Return the table a statement writes (None: any) and whether it only adds rows."""
    if not isinstance(context, DefaultExecutionContext) or context.isdelete:
        return None, False
    table = getattr(getattr(context.compiled, "statement", None), "table", None)
    if not isinstance(table, Table) or not (context.isinsert or context.isupdate):
        return None, False
    if context.isupdate:
        return table.name, False
    sql = statement.upper()
    if "OR REPLACE" in sql:  # replacing a row deletes it first
        return None, False
    return table.name, "DO UPDATE" not in sql


async def watch_other_writers(engine: AsyncEngine, changes: Changes, every: float = 1.0) -> None:
    """Count a change to everything whenever another process has committed to the database.

    Runs until cancelled. SQLite's data_version of a connection changes when any other
    connection commits; the pool's connections are this process's own, so a change there
    is someone else's write.
    """
    while True:
        try:
            async with engine.connect() as connection:
                raw = await connection.get_raw_connection()
                driver = raw.driver_connection
                assert driver is not None
                # Straight to the driver: no transaction, so no write lock is taken.
                async with driver.execute("PRAGMA data_version") as cursor:
                    row = await cursor.fetchone()
                version = int(row[0]) if row else 0
                seen = raw.info.get(_DATA_VERSION)
                if seen is not None and seen != version:
                    logger.info("the database was changed by another process")
                    changes.wrote(None)
                raw.info[_DATA_VERSION] = version
        except Exception:
            logger.exception("cannot check the database for other processes' writes")
        await asyncio.sleep(every)
