"""The real `klimabot run` process for end-to-end tests, with its own config and database."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from storage.db import open_database, session_factory
from storage.demo import load_demo
from storage.models import Category, Tip

READY = "Klimabot läuft"


def store_subscribers(database: Path, user_ids: list[int], topic: str) -> None:
    """Store Telegram members who started the bot a while ago and subscribed to a topic."""
    seen = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat(sep=" ")
    with sqlite3.connect(database) as connection:
        for user_id in user_ids:
            member = connection.execute(
                "INSERT INTO members (display_name, created_at) VALUES (?, ?) RETURNING id",
                (f"Mitglied {user_id}", seen),
            ).fetchone()[0]
            connection.execute(
                "INSERT INTO identities (platform, user_id, member_id, chat_id, last_seen_at) "
                "VALUES ('telegram', ?, ?, ?, ?)",
                (str(user_id), member, str(user_id), seen),
            )
            connection.execute(
                "INSERT INTO subscriptions (member_id, topic, created_at) VALUES (?, ?, ?)",
                (member, topic, seen),
            )


class BotProcess:
    """`klimabot run` in its own process; the test writes the config's platform sections."""

    def __init__(self, folder: Path, sections: str, environment: dict[str, str]) -> None:
        self.folder = folder
        self.database = folder / "klimabot.db"
        self.config = folder / "config.yaml"
        self.config.write_text(
            f"database:\n  url: sqlite+aiosqlite:///{self.database}\n{sections}",
            encoding="utf-8",
        )
        self.environment = environment
        self.webhook_url: str | None = None  # where a Telegram webhook bot listens
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # set once it says it runs, or says nothing more

    async def load_demo(self) -> None:
        """Load the demo network, plus one tip too long for a single chat message."""
        engine = await open_database(f"sqlite+aiosqlite:///{self.database}")
        async with session_factory(engine)() as session:
            await load_demo(session, dt.datetime.now(dt.UTC).date(), ZoneInfo("Europe/Berlin"))
            session.add(
                Tip(
                    partner_id=1,
                    title="Ein sehr langer Erfahrungsbericht",
                    category=Category.ENERGY,
                    text=" ".join(["Druckluft & <Leckagen> 😀"] * 400),
                )
            )
            await session.commit()
        await engine.dispose()

    async def start(self) -> None:
        """Start the process and wait until it says it is running."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KLIMABOT_")}
        environment.update(LANG="C.UTF-8", LC_ALL="", **self.environment)
        self.log.clear()
        self._ready = asyncio.Event()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--config",
            str(self.config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        self._reader = asyncio.create_task(self._read())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 30)
        if not any(READY in line for line in self.log):
            raise AssertionError("klimabot run did not start:\n" + "\n".join(self.log))

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        try:
            async for raw in self.process.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                if READY in line:
                    self._ready.set()
        finally:
            self._ready.set()  # it will say nothing more

    async def stop(self) -> int:
        """Stop the process with SIGTERM, as a service manager does, and return its status."""
        assert self.process is not None
        # A process that closed its stderr is ending by itself. Signalling it would make
        # subprocess poll, and so reap, it first, and asyncio would never learn its status.
        ending = self._reader is not None and self._reader.done()
        if self.process.returncode is None and not ending:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 30)
        if self._reader is not None:
            await self._reader
        return code

    def rows(self, query: str) -> list[tuple[object, ...]]:
        """Return what the bot's database holds now."""
        with sqlite3.connect(self.database) as connection:
            return connection.execute(query).fetchall()

    async def wait_for_rows(
        self,
        query: str,
        fits: Callable[[list[tuple[object, ...]]], bool],
        within: float = 10.0,
    ) -> list[tuple[object, ...]]:
        """Return the query's rows once they fit; the bot writes in its own time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not fits(rows := self.rows(query)):
            if loop.time() > deadline:
                raise AssertionError(f"{query} gave {rows} still after {within} s")
            await asyncio.sleep(0.05)
        return rows
