"""The network's partner organisations."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Partner, Tip


async def list_partners(
    session: AsyncSession, *, offset: int = 0, limit: int = 10
) -> tuple[list[Partner], int]:
    """Return one page of partners in order of joining, and how many there are."""
    total = await session.scalar(select(func.count()).select_from(Partner)) or 0
    partners = await session.scalars(
        select(Partner).order_by(Partner.joined, Partner.name).offset(offset).limit(limit)
    )
    return list(partners), total


async def find_partners(session: AsyncSession, name: str, *, limit: int = 10) -> list[Partner]:
    """Return the partner named exactly so, or else those whose name contains the words."""
    needle = " ".join(name.split()).casefold()
    partners = list(await session.scalars(select(Partner).order_by(Partner.name)))
    exact = [partner for partner in partners if partner.name.casefold() == needle]
    if exact:
        return exact
    words = needle.split()
    return [
        partner for partner in partners if all(word in partner.name.casefold() for word in words)
    ][:limit]


async def tip_count(session: AsyncSession, partner_id: int) -> int:
    """Return how many visible tips a partner has shared."""
    count = await session.scalar(
        select(func.count())
        .select_from(Tip)
        .where(Tip.partner_id == partner_id, Tip.hidden_at.is_(None))
    )
    return count or 0
