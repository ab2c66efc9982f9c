"""Time `/meetings` through dispatch while another process holds SQLite's write lock.

The bot is opened with `open_app`, as `klimabot run` opens it, on a new database file with
the demo network. First `/meetings` is answered for a while with nobody else on the file;
then a second connection (as a `klimabot import` would) takes the write lock with
`BEGIN IMMEDIATE`, writes, and holds it for `--hold` seconds while the same member keeps
asking. The script prints the median and the longest answer time of both phases.
`--writers-only` runs every command as a writer, as Klimabot did before (each unit began
with `BEGIN IMMEDIATE`), to show what the policy changes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bot.allowance import Allowance
from bot.app import open_app
from bot.config import Config, Database
from bot.core import ChatId, Platform, Request, Sender, UserId
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from storage.demo import load_demo

SENDER = Sender(UserId("4711"), "Anna", "de")
REQUEST = Request(Platform.TELEGRAM, ChatId("4711"), SENDER, "meetings", "")


async def answer_times(dispatcher: Dispatcher, until: threading.Event | float) -> list[float]:
    """Ask /meetings one after another until the event is set or the deadline has passed."""
    times: list[float] = []
    while True:
        if isinstance(until, threading.Event) and until.is_set():
            return times
        if isinstance(until, float) and time.monotonic() >= until:
            return times
        started = time.perf_counter()
        reply = await dispatcher.handle(REQUEST)
        times.append(time.perf_counter() - started)
        assert reply is not None
        assert "Treffen" in to_plain(reply.text), to_plain(reply.text)


def hold_lock(
    database: Path, seconds: float, taken: threading.Event, done: threading.Event
) -> None:
    """Take the write lock, write like an import, hold it, then commit."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    connection.execute(
        "INSERT INTO partners (name, sector, joined, created_at) "
        "VALUES ('Import GmbH', '', '2022-10-01', '2026-11-25 10:00:00')"
    )
    taken.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()
    done.set()


def report(name: str, times: list[float]) -> None:
    print(
        f"{name:32} {len(times):6} answers  median {statistics.median(times) * 1000:8.1f} ms"
        f"  max {max(times) * 1000:8.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hold", type=float, default=15.0, help="seconds the lock is held")
    parser.add_argument("--writers-only", action="store_true", help="the policy before")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "klimabot.db"
        url = f"sqlite+aiosqlite:///{database}"
        app = await open_app(Config(database=Database(url=url)))
        try:
            async with app.sessions() as session:
                await load_demo(session, dt.datetime.now(dt.UTC).date(), app.config.network.zone)
                await session.commit()
            # One member asks as fast as answers come: not what the rate limit is for.
            app.dispatcher.allowance = Allowance(limit=10**9, window=1)
            if args.writers_only:
                app.dispatcher.readers = None
            await app.dispatcher.handle(REQUEST)  # the member's first contact
            report("no lock", await answer_times(app.dispatcher, time.monotonic() + args.hold))
            taken, done = threading.Event(), threading.Event()
            holder = threading.Thread(target=hold_lock, args=(database, args.hold, taken, done))
            holder.start()
            await asyncio.to_thread(taken.wait)
            report(f"write lock held {args.hold:g} s", await answer_times(app.dispatcher, done))
            holder.join()
        finally:
            await app.close()


if __name__ == "__main__":
    asyncio.run(main())
