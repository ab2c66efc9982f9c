"""The reminder planner: turns meetings, answers and preferences into due outbox rows.

Each round also keeps the meetings' own upkeep: the occurrences of recurring meetings that
came within reach, and guided dialogs that ran out.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import read_or_write
from storage.dialogs import any_expired_dialogs, drop_expired_dialogs
from storage.models import utcnow
from storage.reminders import Planned, ReminderRules, plan_reminders
from storage.series import extend_series

logger = logging.getLogger(__name__)

# Reminders missed while the bot was down are recorded at most about this many a round, so
# that no round holds the write lock for long (a first start may find a million).
MISSED_PER_ROUND = 50_000
BETWEEN_PARTS = 0.5  # seconds


class ReminderPlanner:
    """Every few seconds, queue the reminders due within the horizon (and, at start, the missed).

    The horizon is longer than the pause between rounds, so a reminder is in the outbox
    before it is due and the delivery worker sends it on time.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rules: ReminderRules,
        *,
        every: float = 10.0,
        horizon: dt.timedelta = dt.timedelta(minutes=1),
        clock: Callable[[], dt.datetime] = utcnow,
        readers: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.sessions = sessions
        # Rounds that find nothing to queue take no write lock.
        self.readers = readers or sessions
        self.rules = rules
        self.every = every
        self.horizon = horizon
        self.clock = clock
        self._stopping = asyncio.Event()
        # Every reminder due until then has been looked at by a round of this planner. The
        # first round looks at everything (what fell due while the bot was down); later ones
        # look again only at what may still be sent, the catch-up window.
        self._looked_until: dt.datetime | None = None
        # Where recording the reminders missed while the bot was down goes on, if unfinished.
        self._missed_from: tuple[dt.datetime, int, int] | None = None

    async def plan_once(self) -> Planned:
        """Queue what is due soon; looking alone takes no write lock.

        The first round after a start queues what may still be sent in one unit of work, and
        only then records what was missed while the bot was down (possibly a great many), so
        the catch-up reminders are not held up by that.
        """
        now = self.clock()
        await self._upkeep(now)
        since = self._looked_until
        if since is None:
            sendable = await self._plan(now, since, missed=False)
            late = await self._plan(
                now, since, missed=True, limit=MISSED_PER_ROUND, resume=self._missed_from
            )
            self._missed_from = late.resume
            planned = Planned(sendable.queued, late.expired, resume=late.resume)
        else:
            planned = await self._plan(now, since, missed=None)
        if not planned.more:
            self._looked_until = now - self.rules.catch_up
        if planned.expired:
            logger.warning("%d reminders were missed for good (too late to send)", planned.expired)
        return planned

    async def _upkeep(self, now: dt.datetime) -> None:
        """Make the occurrences of series that came within reach; drop dialogs that ran out."""

        async def upkeep(session: AsyncSession) -> None:
            await extend_series(session, now, self.rules.timezone)
            if await any_expired_dialogs(session, now):
                await drop_expired_dialogs(session, now)

        await read_or_write(self.readers, self.sessions, upkeep)

    async def _plan(
        self,
        now: dt.datetime,
        since: dt.datetime | None,
        *,
        missed: bool | None,
        limit: int | None = None,
        resume: tuple[dt.datetime, int, int] | None = None,
    ) -> Planned:
        """Plan in one unit of work, which takes the write lock only when it writes."""

        async def plan(session: AsyncSession) -> Planned:
            return await plan_reminders(
                session,
                now,
                self.horizon,
                self.rules,
                since=since,
                missed=missed,
                limit=limit,
                resume=resume,
            )

        return await read_or_write(self.readers, self.sessions, plan)

    async def run(self) -> None:
        """Plan until stopped; one failing round is logged and the next one tries again."""
        while not self._stopping.is_set():
            wait = self.every
            try:
                if (await self.plan_once()).more:
                    wait = BETWEEN_PARTS  # the rest of the backlog, once others had the lock
            except Exception:
                logger.exception("planning reminders failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    def stop(self) -> None:
        """End after the round in hand."""
        self._stopping.set()
