"""Linking a member's accounts on several platforms into one member."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.invites import new_code, normalise_code
from storage.members import subscribe, subscriptions_of
from storage.models import (
    Endorsement,
    Identity,
    InviteCode,
    LinkCode,
    Member,
    Rsvp,
    Tip,
)

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


async def _merge(session: AsyncSession, source: Member, target: Member) -> None:
    """Move everything of source to target (target's own choices win), then drop source."""
    await subscribe(session, target.id, await subscriptions_of(session, source.id))
    # Where both answered (a meeting, a tip), the target's answer stays.
    answered = select(Rsvp.meeting_id).where(Rsvp.member_id == target.id)
    await session.execute(
        delete(Rsvp).where(Rsvp.member_id == source.id, Rsvp.meeting_id.in_(answered))
    )
    endorsed = select(Endorsement.tip_id).where(Endorsement.member_id == target.id)
    await session.execute(
        delete(Endorsement).where(
            Endorsement.member_id == source.id, Endorsement.tip_id.in_(endorsed)
        )
    )
    for table in (Rsvp, Endorsement):
        await session.execute(
            update(table).where(table.member_id == source.id).values(member_id=target.id)
        )
    await session.execute(
        update(Tip).where(Tip.shared_by == source.id).values(shared_by=target.id)
    )
    await session.execute(
        update(InviteCode).where(InviteCode.used_by == source.id).values(used_by=target.id)
    )
    await session.execute(
        update(InviteCode).where(InviteCode.created_by == source.id).values(created_by=target.id)
    )
    await session.execute(
        update(Identity).where(Identity.member_id == source.id).values(member_id=target.id)
    )
    target.language = target.language or source.language
    target.partner_id = target.partner_id or source.partner_id
    await session.flush()
    await session.execute(delete(Member).where(Member.id == source.id))
    await session.flush()
