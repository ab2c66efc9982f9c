"""The network's partner organisations."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Partner, Tip
from storage.search import stems


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
    """Return the partner named so, or else those whose name contains the words.

    Names and words are compared as storage.search stems them: "baeckerei", "Backerei" and
    "Bäckereien" all find "Bäckerei Schmitz", and "Schmitz Bäckerei" finds it too.
    """
    wanted = stems(name)
    if not wanted:
        return []
    partners = list(await session.scalars(select(Partner).order_by(Partner.name)))
    named = {partner.id: stems(partner.name) for partner in partners}
    exact = [partner for partner in partners if named[partner.id] == wanted]
    if exact:
        return exact
    return [
        partner
        for partner in partners
        if all(word in " ".join(named[partner.id]) for word in wanted)
    ][:limit]


async def tip_count(session: AsyncSession, partner_id: int) -> int:
    """Return how many visible tips a partner has shared."""
    count = await session.scalar(
        select(func.count())
        .select_from(Tip)
        .where(Tip.partner_id == partner_id, Tip.hidden_at.is_(None))
    )
    return count or 0
