"""Members, their platform identities, languages and subscriptions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import dialect_name
from storage.models import Identity, Member, Subscription, Topic

NAME_LIMIT = 200  # characters of a display name that are kept
# How often "last wrote from here" is written down: a push goes where a person wrote last,
# which needs no finer clock, and most commands then write nothing.
SEEN_EVERY = dt.timedelta(minutes=10)


async def member_for(
    session: AsyncSession,
    platform: str,
    user_id: str,
    *,
    display_name: str = "",
    language: str | None = None,
    private_chat: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Member, bool, bool]:
    """Return the member behind a platform account, whether they are new, and whether to
    note where they wrote from (see ``note_seen``); a new member is created at once.

    ``private_chat`` is the chat the person writes from when it is theirs alone: pushes
    go there.
    """
    found = (
        await session.execute(
            select(Member, Identity)
            .join(Identity, Identity.member_id == Member.id)
            .where(Identity.platform == platform, Identity.user_id == user_id)
        )
    ).first()
    if found is not None:
        member, identity = found
        if display_name and member.display_name != display_name[:NAME_LIMIT]:
            member.display_name = display_name[:NAME_LIMIT]
        if identity.unreachable_since is not None:
            # They wrote to the bot, so it can reach them again.
            identity.unreachable_since = None
        seen = identity.last_seen_at
        due = (
            private_chat is not None
            and now is not None
            and (identity.chat_id != private_chat or seen is None or now - seen >= SEEN_EVERY)
        )
        return member, False, due
    member = Member(display_name=display_name[:NAME_LIMIT], language=language)
    session.add(member)
    await session.flush()
    session.add(
        Identity(
            platform=platform,
            user_id=user_id,
            member_id=member.id,
            chat_id=private_chat,
            last_seen_at=now if private_chat is not None else None,
        )
    )
    await session.flush()
    return member, True, False


async def note_seen(
    session: AsyncSession, platform: str, user_id: str, private_chat: str, now: dt.datetime
) -> None:
    """Note the private chat a person wrote from, and when: where their pushes go."""
    await session.execute(
        update(Identity)
        .where(Identity.platform == platform, Identity.user_id == user_id)
        .values(chat_id=private_chat, last_seen_at=now)
    )


async def mark_unreachable(
    session: AsyncSession, platform: str, chat_id: str, now: dt.datetime
) -> None:
    """Remember that the platform refuses to deliver to the person in a private chat."""
    await session.execute(
        update(Identity)
        .where(
            Identity.platform == platform,
            # A Telegram private chat has the person's id; a Matrix room has its own.
            or_(Identity.chat_id == chat_id, Identity.user_id == chat_id),
            Identity.unreachable_since.is_(None),
        )
        .values(unreachable_since=now)
    )


async def subscribe(session: AsyncSession, member_id: int, topics: Iterable[Topic]) -> None:
    """Subscribe a member to topics; topics already subscribed stay as they are."""
    rows = [{"member_id": member_id, "topic": topic} for topic in topics]
    if not rows:
        return
    if dialect_name(session) == "sqlite":
        await session.execute(sqlite_insert(Subscription).on_conflict_do_nothing(), rows)
        return
    existing = await subscriptions_of(session, member_id)
    session.add_all(Subscription(**row) for row in rows if row["topic"] not in existing)
    await session.flush()


async def unsubscribe(session: AsyncSession, member_id: int, topics: Iterable[Topic]) -> None:
    """Remove a member's subscriptions to the given topics."""
    await session.execute(
        delete(Subscription).where(
            Subscription.member_id == member_id, Subscription.topic.in_(list(topics))
        )
    )


async def subscriptions_of(session: AsyncSession, member_id: int) -> set[Topic]:
    """Return the topics a member is subscribed to."""
    topics = await session.scalars(
        select(Subscription.topic).where(Subscription.member_id == member_id)
    )
    return set(topics)
