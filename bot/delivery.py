"""The delivery worker: sends due outbox rows through the transports and records each outcome.

Rows are taken with a lease, so a worker that dies leaves them to the next one; a row counts
as delivered only after the platform took the message, so a crash repeats at most the
messages in flight (and on Matrix not even those: the row's id is the transaction id).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import i18n
from bot.core import (
    ChatId,
    MessageRef,
    Obsolete,
    Platform,
    RateLimited,
    Recipient,
    Rejected,
    Reply,
    Unreachable,
)
from bot.transports import Transport
from storage.db import read_or_write
from storage.members import mark_unreachable
from storage.models import DeliveryState, utcnow
from storage.outbox import (
    Claimed,
    claim_due,
    finish,
    lease_owners,
    next_due,
    pause_platform,
    paused_until,
    release_leases,
    retry_later,
)

logger = logging.getLogger(__name__)

Render = Callable[[AsyncSession, Claimed], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """A message to show (or replace) for someone following a push, such as a broadcast."""

    recipient: Recipient
    message: MessageRef | None
    reply: Reply


# Given the announcements whose rows just finished (None: every one not finished yet),
# return the progress messages due now.
Progress = Callable[[AsyncSession, set[int] | None, dt.datetime], Awaitable[list[ProgressUpdate]]]


@dataclass(frozen=True, slots=True)
class Pace:
    """How the worker takes rows: how many at once, how long it holds them, how it retries."""

    in_flight: int = 16
    # Matrix has no pacer that lets replies go first: pushes in flight wait at the homeserver
    # ahead of the members' replies, and more than two send no faster.
    matrix_in_flight: int = 2
    lease: dt.timedelta = dt.timedelta(seconds=60)
    idle: float = 0.5  # seconds between looks for new rows when there were none
    max_attempts: int = 5
    backoff: float = 2.0  # seconds before the first retry, doubled each time
    # A process that just started cannot know what an earlier one sent in its last second:
    # it waits that second out, so that the two together keep the per-second limit.
    warmup: float = 1.1

    def sends_at_once(self, platform: Platform) -> int:
        """Return how many sends to keep in flight on a platform."""
        return self.matrix_in_flight if platform is Platform.MATRIX else self.in_flight


class DeliveryWorker:
    """Send every due delivery row once, per platform at that platform's pace."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transports: Mapping[Platform, Transport],
        render: Render,
        localizer: Callable[[str | None], i18n.Localizer],
        *,
        progress: Progress | None = None,
        pace: Pace | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        owner: str | None = None,
        readers: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessions = sessions
        # Units that only look take no write lock; those that change rows use ``sessions``.
        self.readers = readers or sessions
        self.transports = transports
        self.render = render
        self.localizer = localizer
        self.progress = progress
        self.pace = pace or Pace()
        self.clock = clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._stopping = asyncio.Event()
        # Seconds until the next row of a platform falls due, as the last look found it.
        self._due_in: dict[Platform, float] = {}

    async def run(self) -> None:
        """Send until stopped; what is in flight when ``stop`` is called still finishes."""
        await self._release_leases_of_the_dead()
        await self._keep_stored_pauses()
        # A report an earlier process did not get to show (it stopped after the last send).
        await self._show_progress(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.pace.warmup)
        async with asyncio.TaskGroup() as group:
            for platform in self.transports:
                group.create_task(self._serve(platform))

    async def send_due(self) -> None:
        """Send every row due now on every platform, then return (the console's last word)."""
        for platform in self.transports:
            while batch := await self._claim(platform, self.pace.in_flight):
                await asyncio.gather(*(self._deliver(row) for row in batch))
                await self._show_progress({r.announcement_id for r in batch if r.announcement_id})

    def stop(self) -> None:
        """Take no more rows; ``run`` returns once the sends in flight are recorded."""
        self._stopping.set()

    async def _serve(self, platform: Platform) -> None:
        """Keep enough sends going that the round trip never caps the rate."""
        running: set[asyncio.Task[int | None]] = set()
        touched: set[int] = set()
        shown = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            wait = self.pace.idle
            try:
                free = self.pace.sends_at_once(platform) - len(running)
                batch = await self._claim(platform, free) if free > 0 else []
                running |= {asyncio.create_task(self._deliver(row)) for row in batch}
                if running:
                    done, running = await asyncio.wait(
                        running, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                    )
                    touched |= {found for task in done if (found := task.result())}
                    wait = 0.0
                elif pause := await self._pause_left(platform):
                    wait = pause
                else:
                    # A row queued ahead (a reminder) goes at its due time, not up to a look later.
                    wait = min(wait, self._due_in.get(platform, wait))
                if touched and (not running or loop.time() - shown >= 1.0):
                    await self._show_progress(touched)
                    touched, shown = set(), loop.time()
            except Exception:
                logger.exception("delivery on %s failed; trying again", platform)
                wait = self.pace.idle * 4
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), wait)
        if running:
            await asyncio.wait(running)  # what is in flight finishes and is recorded
        await self._show_progress(touched)

    async def _claim(self, platform: Platform, limit: int) -> list[Claimed]:
        """Take up to ``limit`` due rows, unless the platform asked for a pause."""
        now = self.clock()
        # Looking costs no write lock: an import holding it never stalls an idle worker.
        async with self.readers() as session:
            paused = await paused_until(session, platform)
            due = await next_due(session, platform)
        self._due_in.pop(platform, None)
        if due is not None and due > now:
            self._due_in[platform] = (due - now).total_seconds()
        if (paused is not None and paused > now) or due is None or due > now:
            return []
        async with self.sessions() as session:
            batch = await claim_due(
                session, platform, self.owner, now, lease=self.pace.lease, limit=limit
            )
            await session.commit()
        return batch

    async def _pause_left(self, platform: Platform) -> float:
        """Return the seconds left of a pause the platform asked for (at most a minute)."""
        now = self.clock()
        async with self.readers() as session:
            paused = await paused_until(session, platform)
        return min((paused - now).total_seconds(), 60.0) if paused and paused > now else 0.0

    async def _deliver(self, row: Claimed) -> int | None:
        """Send one row and record the outcome; return its announcement, for the progress."""
        transport = self.transports[Platform(row.platform)]
        recipient = Recipient(Platform(row.platform), ChatId(row.chat_id))
        state, error, retry_at, counted = None, None, None, True
        try:
            async with self.readers() as session:
                with i18n.using(self.localizer(row.language)):
                    reply = await self.render(session, row)
            await transport.send(recipient, reply, key=f"delivery-{row.id}")
            state = DeliveryState.DELIVERED
        except Obsolete as reason:
            state, error = DeliveryState.CANCELLED, str(reason)
        except Unreachable as refusal:
            state, error = DeliveryState.UNREACHABLE, str(refusal)
        except Rejected as refusal:
            state, error = DeliveryState.FAILED, str(refusal)
            logger.warning("%s refused delivery %s: %s", row.platform, row.id, refusal)
        except RateLimited as limited:
            retry_at = self.clock() + dt.timedelta(seconds=limited.retry_after)
            counted, error = False, str(limited)
            async with self.sessions() as session:
                await pause_platform(session, row.platform, retry_at)
                await session.commit()
        except Exception as failure:  # a network error or a server's 5xx: try again later
            error = f"{type(failure).__name__}: {failure}"[:500]
            if row.attempts + 1 >= self.pace.max_attempts:
                state = DeliveryState.FAILED
            else:
                delay = self.pace.backoff * 2**row.attempts
                retry_at = self.clock() + dt.timedelta(seconds=delay)
            logger.info("delivery %s to %s failed: %s", row.id, row.platform, error)
        await self._record(row, state, error, retry_at, counted=counted)
        return row.announcement_id

    async def _record(
        self,
        row: Claimed,
        state: DeliveryState | None,
        error: str | None,
        retry_at: dt.datetime | None,
        *,
        counted: bool,
    ) -> None:
        now = self.clock()
        async with self.sessions() as session:
            if state is None:
                await retry_later(
                    session, row.id, self.owner, retry_at or now, error, count=counted
                )
            else:
                await finish(session, row.id, self.owner, state, now=now, error=error)
                if state is DeliveryState.UNREACHABLE:
                    await mark_unreachable(session, row.platform, row.chat_id, now)
            await session.commit()

    async def _show_progress(self, announcements: set[int] | None) -> None:
        if self.progress is None or announcements == set():
            return
        now = self.clock()
        progress = self.progress
        # Mostly there is nothing to show: looking takes no write lock.
        updates = await read_or_write(
            self.readers, self.sessions, lambda session: progress(session, announcements, now)
        )
        for update in updates:
            transport = self.transports.get(update.recipient.platform)
            if transport is None:
                continue
            try:
                if update.message is None:
                    key = f"progress-{self.clock().timestamp()}"
                    await transport.send(update.recipient, update.reply, key=key)
                else:
                    await transport.edit(update.recipient, update.message, update.reply)
            except Exception:
                logger.exception("showing the progress in %s failed", update.recipient.chat_id)

    async def _keep_stored_pauses(self) -> None:
        """Hold each transport for what remains of a pause its platform asked for earlier."""
        now = self.clock()
        async with self.readers() as session:
            for platform, transport in self.transports.items():
                until = await paused_until(session, platform)
                if until is not None and until > now:
                    logger.info("%s asked for a pause until %s", platform, until.isoformat())
                    transport.hold((until - now).total_seconds())

    async def _release_leases_of_the_dead(self) -> None:
        """Free rows that an earlier process on this host took and could not finish."""
        host = self.owner.rsplit(":", 1)[0]
        async with self.readers() as session:
            dead = [
                owner
                for owner in await lease_owners(session)
                if owner != self.owner
                and owner.rsplit(":", 1)[0] == host
                and not _alive(owner.rsplit(":", 1)[1])
            ]
        if not dead:
            return
        async with self.sessions() as session:
            released = await release_leases(session, dead)
            await session.commit()
        if released:
            logger.info("taking over %d messages a stopped process had in hand", released)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
