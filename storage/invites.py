"""One-time invite codes that link members to partner organisations."""

from __future__ import annotations

import datetime as dt
import enum
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import InviteCode, Member, Partner

# No 0/O, 1/I/L: codes are read aloud and typed from paper.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
VALID_FOR = dt.timedelta(days=14)


class InviteRefused(enum.Enum):
    """Why a code could not be redeemed."""

    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


def new_code() -> str:
    """Return a fresh random code such as ``K7QM-3XPA``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def normalise_code(text: str) -> str:
    """Return a code as stored, whatever case and separators a person typed."""
    raw = "".join(char for char in text.upper() if char.isalnum())
    return f"{raw[:4]}-{raw[4:]}" if len(raw) == 8 else raw


async def create_invite(
    session: AsyncSession, partner: Partner, created_by: int | None, now: dt.datetime
) -> InviteCode:
    """Create a one-time invite code for a partner's people."""
    invite = InviteCode(
        code=new_code(),
        partner_id=partner.id,
        created_by=created_by,
        created_at=now,
        expires_at=now + VALID_FOR,
    )
    session.add(invite)
    await session.flush()
    return invite


async def redeem_invite(
    session: AsyncSession, code: str, member: Member, now: dt.datetime
) -> Partner | InviteRefused:
    """Link the member to the code's partner, or say why the code is refused."""
    invite = await session.scalar(
        select(InviteCode)
        .where(InviteCode.code == normalise_code(code))
        .options(selectinload(InviteCode.partner))
    )
    if invite is None:
        return InviteRefused.UNKNOWN
    if invite.used_at is not None:
        return InviteRefused.USED
    if invite.expires_at <= now:
        return InviteRefused.EXPIRED
    invite.used_at, invite.used_by = now, member.id
    member.partner_id = invite.partner_id
    await session.flush()
    return invite.partner
