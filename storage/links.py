"""Linking a member's accounts on several platforms into one member."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    Column,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from storage.invites import new_code, normalise_code
from storage.models import Base, LinkCode, Member

VALID_FOR = dt.timedelta(minutes=15)


class LinkRefused(enum.Enum):
    """Why a link code could not be used."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    SAME_MEMBER = "same"


async def create_link_code(session: AsyncSession, member: Member, now: dt.datetime) -> LinkCode:
    """Create a one-time code that another account of this member can redeem."""
    link = LinkCode(code=new_code(), member_id=member.id, expires_at=now + VALID_FOR)
    session.add(link)
    await session.flush()
    return link


async def redeem_link_code(
    session: AsyncSession, code: str, member: Member, now: dt.datetime
) -> Member | LinkRefused:
    """Join the redeeming member into the member who made the code; return that member."""
    link = await session.scalar(
        select(LinkCode).where(LinkCode.code == normalise_code(code), LinkCode.used_at.is_(None))
    )
    if link is None:
        return LinkRefused.UNKNOWN
    if link.expires_at <= now:
        return LinkRefused.EXPIRED
    if link.member_id == member.id:
        return LinkRefused.SAME_MEMBER
    target = await session.get(Member, link.member_id)
    assert target is not None
    link.used_at = now
    await _merge(session, member, target)
    return target


Key = tuple[Column[Any], ...]


def _references_to_members() -> list[tuple[Table, Column[Any], list[Key]]]:
    """Return every column that points at a member, with the rest of each key it is part of.

    Derived from the models' foreign keys, so a table added later is merged too. Where the
    member column is part of a primary or unique key (an answer per meeting, a subscription
    per topic), the key's other columns say which rows of the two members collide.
    """
    members = Member.__table__
    found = []
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table is not members or table is members:
                continue
            column = key.parent
            rests = [
                tuple(c for c in constraint.columns if c is not column)
                for constraint in table.constraints
                if isinstance(constraint, PrimaryKeyConstraint | UniqueConstraint)
                and column in constraint.columns.values()
            ]
            found.append((table, column, rests))
    return found


async def _merge(session: AsyncSession, source: Member, target: Member) -> None:
    """Move everything of source to target (target's own choices win), then drop source."""
    await session.flush()
    for table, column, rests in _references_to_members():
        for rest in rests:
            # Where both have a row (answered the same meeting), the target's stays.
            # A key of the member alone (one dialog per member): the target's row stays.
            theirs = select(*rest or (column,)).where(column == target.id)
            collides = tuple_(*rest).in_(theirs) if rest else theirs.exists()
            await session.execute(delete(table).where(column == source.id, collides))
        await session.execute(
            update(table).where(column == source.id).values({column.name: target.id})
        )
    inherited = {
        attribute.key: getattr(source, attribute.key)
        for attribute in Member.__mapper__.column_attrs
        if attribute.key != "id" and getattr(target, attribute.key) in (None, "")
    }
    # Gone first, so that a unique value (the calendar feed's token) can move to the target.
    await session.execute(delete(Member).where(Member.id == source.id))
    for key, value in inherited.items():
        setattr(target, key, value)
    await session.flush()
