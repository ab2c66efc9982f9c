"""The outbox: one delivery row per pushed message, claimed with a lease and finished once."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Delivery,
    DeliveryState,
    Identity,
    Member,
    PlatformPause,
    Subscription,
    Topic,
)


@dataclass(frozen=True, slots=True)
class Address:
    """Where one member gets pushed messages: the chat they last wrote from."""

    member_id: int
    platform: str
    chat_id: str
    reachable: bool


async def addresses(session: AsyncSession, topic: Topic) -> list[Address]:
    """Return one address per member subscribed to a topic.

    A member linked on several platforms is reached where they last wrote to the bot, on a
    platform that still accepts messages for them; one no platform accepts is listed as not
    reachable, so that reports can count them.
    """
    subscribed = select(Subscription.member_id).where(Subscription.topic == topic)
    return await _addresses(session, Identity.member_id.in_(subscribed))


async def member_addresses(session: AsyncSession, member_ids: Iterable[int]) -> list[Address]:
    """Return one address per member given, chosen as for a topic's subscribers."""
    return await _addresses(session, Identity.member_id.in_(list(member_ids)))


async def _addresses(session: AsyncSession, members: ColumnElement[bool]) -> list[Address]:
    rows = await session.execute(
        select(
            Identity.member_id,
            Identity.platform,
            Identity.chat_id,
            Identity.unreachable_since,
            Identity.last_seen_at,
        ).where(members, Identity.chat_id.is_not(None))
    )
    best: dict[int, tuple[tuple[bool, dt.datetime], Address]] = {}
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    for member_id, platform, chat_id, unreachable_since, last_seen_at in rows:
        assert chat_id is not None
        reachable = unreachable_since is None
        rank = (reachable, last_seen_at or oldest)
        if member_id not in best or rank > best[member_id][0]:
            best[member_id] = (rank, Address(member_id, platform, chat_id, reachable))
    return [address for _rank, address in best.values()]


async def queue_deliveries(
    session: AsyncSession,
    targets: list[Address],
    due_at: dt.datetime,
    now: dt.datetime,
    *,
    announcement_id: int | None = None,
    notice_id: int | None = None,
) -> None:
    """Add a delivery row per address; one known to be unreachable is final at once."""
    if not targets:
        return
    await session.execute(
        insert(Delivery),
        [
            {
                "announcement_id": announcement_id,
                "notice_id": notice_id,
                "member_id": target.member_id,
                "platform": target.platform,
                "chat_id": target.chat_id,
                "state": DeliveryState.PENDING if target.reachable else DeliveryState.UNREACHABLE,
                "due_at": due_at,
                "finished_at": None if target.reachable else now,
                "created_at": now,
                "attempts": 0,
            }
            for target in targets
        ],
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery row taken by a worker, with what it needs to render it."""

    id: int
    platform: str
    chat_id: str
    member_id: int
    language: str | None
    announcement_id: int | None
    meeting_id: int | None
    notice_id: int | None
    attempts: int


async def claim_due(
    session: AsyncSession,
    platform: str,
    owner: str,
    now: dt.datetime,
    *,
    lease: dt.timedelta,
    limit: int,
) -> list[Claimed]:
    """Take up to ``limit`` due rows of a platform that no live lease holds, oldest first."""
    free = or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now)
    due = (
        select(Delivery.id)
        .where(
            Delivery.state == DeliveryState.PENDING,
            Delivery.platform == platform,
            Delivery.due_at <= now,
            free,
        )
        .order_by(Delivery.due_at, Delivery.id)
        .limit(limit)
    )
    taken = list(
        await session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease)
            .returning(Delivery.id)
        )
    )
    if not taken:
        return []
    rows = await session.execute(
        select(
            Delivery.id,
            Delivery.platform,
            Delivery.chat_id,
            Delivery.member_id,
            Member.language,
            Delivery.announcement_id,
            Delivery.meeting_id,
            Delivery.notice_id,
            Delivery.attempts,
        )
        .join(Member, Member.id == Delivery.member_id)
        .where(Delivery.id.in_(taken))
        .order_by(Delivery.due_at, Delivery.id)
    )
    return [Claimed(*row) for row in rows]


async def release_leases(session: AsyncSession, owners: list[str]) -> int:
    """Free the rows that workers which are gone had taken; return how many."""
    if not owners:
        return 0
    result = await session.execute(
        update(Delivery)
        .where(Delivery.state == DeliveryState.PENDING, Delivery.lease_owner.in_(owners))
        .values(lease_owner=None, lease_until=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def lease_owners(session: AsyncSession) -> list[str]:
    """Return the workers that hold leases on pending rows."""
    rows = await session.scalars(
        select(Delivery.lease_owner)
        .where(Delivery.state == DeliveryState.PENDING, Delivery.lease_owner.is_not(None))
        .distinct()
    )
    return [owner for owner in rows if owner]


async def finish(
    session: AsyncSession,
    delivery_id: int,
    owner: str,
    state: DeliveryState,
    *,
    now: dt.datetime,
    error: str | None = None,
) -> bool:
    """Record a row's final state, if this worker still holds it; tell whether it did."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.state == DeliveryState.PENDING,
            Delivery.lease_owner == owner,
        )
        .values(state=state, error=error, finished_at=now, lease_owner=None, lease_until=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def retry_later(
    session: AsyncSession,
    delivery_id: int,
    owner: str,
    due_at: dt.datetime,
    error: str | None,
    *,
    count: bool = True,
) -> None:
    """Give a row back to be sent again from ``due_at``; ``count`` it as a failed attempt."""
    values: dict[str, object] = {
        "due_at": due_at,
        "error": error,
        "lease_owner": None,
        "lease_until": None,
    }
    if count:
        values["attempts"] = Delivery.attempts + 1
    await session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.state == DeliveryState.PENDING,
            Delivery.lease_owner == owner,
        )
        .values(values)
    )


async def cancel_pending(
    session: AsyncSession, announcement_id: int, now: dt.datetime, *, owner: str | None = None
) -> int:
    """Cancel an announcement's rows not sent yet (rows in flight finish); return how many."""
    in_flight = and_(Delivery.lease_owner.is_not(None), Delivery.lease_until > now)
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.announcement_id == announcement_id,
            Delivery.state == DeliveryState.PENDING,
            ~in_flight if owner is None else or_(~in_flight, Delivery.lease_owner == owner),
        )
        .values(state=DeliveryState.CANCELLED, finished_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delivery_counts(
    session: AsyncSession, announcement_id: int
) -> Counter[tuple[str, DeliveryState]]:
    """Count an announcement's rows by platform and state."""
    rows = await session.execute(
        select(Delivery.platform, Delivery.state, func.count())
        .where(Delivery.announcement_id == announcement_id)
        .group_by(Delivery.platform, Delivery.state)
    )
    return Counter({(platform, DeliveryState(state)): count for platform, state, count in rows})


async def failure_reasons(session: AsyncSession, announcement_id: int) -> Counter[str]:
    """Count why an announcement's failed rows failed."""
    rows = await session.execute(
        select(Delivery.error, func.count())
        .where(
            Delivery.announcement_id == announcement_id,
            Delivery.state == DeliveryState.FAILED,
        )
        .group_by(Delivery.error)
    )
    return Counter({error or "?": count for error, count in rows})


async def pause_platform(session: AsyncSession, platform: str, until: dt.datetime) -> None:
    """Store that a platform wants nothing sent before ``until``."""
    pause = await session.get(PlatformPause, platform)
    if pause is None:
        session.add(PlatformPause(platform=platform, until=until))
    elif pause.until < until:
        pause.until = until
    await session.flush()


async def paused_until(session: AsyncSession, platform: str) -> dt.datetime | None:
    """Return until when a platform wants nothing sent, if it asked."""
    pause = await session.get(PlatformPause, platform)
    return pause.until if pause is not None else None


async def next_due(session: AsyncSession, platform: str) -> dt.datetime | None:
    """Return when the next pending row of a platform falls due."""
    return await session.scalar(
        select(func.min(Delivery.due_at)).where(
            Delivery.state == DeliveryState.PENDING, Delivery.platform == platform
        )
    )
