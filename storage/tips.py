"""Shared CO2-saving tips: browsing by category and ranked full-text search."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.db import dialect_name
from storage.models import Category, Tip

MAX_SEARCH_WORDS = 8
RANK_BY_RELEVANCE_UP_TO = 5000
# The full-text index holds visible tips only (see migration 0002).
RANKED = text(
    "SELECT tips.id FROM tips_fts JOIN tips ON tips.id = tips_fts.rowid "
    "WHERE tips_fts MATCH :match "
    "ORDER BY bm25(tips_fts, 3.0, 1.0) * (1.0 + 0.2 * tips.endorsement_count), tips.id DESC "
    "LIMIT :limit OFFSET :offset"
)
# "+id" keeps SQLite on the (hidden_at, endorsement_count) index, in ranking order.
BY_ENDORSEMENTS = text(
    "SELECT id FROM tips WHERE hidden_at IS NULL "
    "AND +id IN (SELECT rowid FROM tips_fts WHERE tips_fts MATCH :match) "
    "ORDER BY endorsement_count DESC, id DESC LIMIT :limit OFFSET :offset"
)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class TipPage:
    """One page of tips and the number of tips that match in all."""

    tips: list[Tip]
    total: int


def search_words(query: str) -> list[str]:
    """Return the words of a search query, without any search-syntax characters."""
    words = [word for word in _WORD.findall(query) if len(word) >= 2 or word.isdigit()]
    return words[:MAX_SEARCH_WORDS]


async def top_tips(session: AsyncSession, *, offset: int = 0, limit: int = 5) -> TipPage:
    """Return the most endorsed tips, then those with the largest savings."""
    return await _browse(session, None, offset, limit)


async def tips_in_category(
    session: AsyncSession, category: Category, *, offset: int = 0, limit: int = 5
) -> TipPage:
    """Return the tips of one category, most endorsed first."""
    return await _browse(session, category, offset, limit)


async def _browse(
    session: AsyncSession, category: Category | None, offset: int, limit: int
) -> TipPage:
    where: list[ColumnElement[bool]] = [Tip.hidden_at.is_(None)]
    if category is not None:
        where.append(Tip.category == category)
    total = await session.scalar(select(func.count()).select_from(Tip).where(*where)) or 0
    tips = await session.scalars(
        select(Tip)
        .where(*where)
        .options(selectinload(Tip.partner))
        .order_by(Tip.endorsement_count.desc(), Tip.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return TipPage(list(tips), total)


async def search_tips(
    session: AsyncSession, query: str, *, offset: int = 0, limit: int = 5
) -> TipPage:
    """Return the tips matching every word (as a prefix), best match first.

    On SQLite this is FTS5 with bm25 ranking, weighted up by endorsements; elsewhere a
    plain substring match. Only this function knows the difference.
    """
    words = search_words(query)
    if not words:
        return TipPage([], 0)
    if dialect_name(session) != "sqlite":
        return await _search_like(session, words, offset, limit)
    # Each word quoted: FTS5 syntax in the query (OR, NEAR, *, ") is just text.
    match = " ".join('"{}"*'.format(word.replace('"', "")) for word in words)
    total = await session.scalar(
        text("SELECT count(*) FROM tips_fts WHERE tips_fts MATCH :match"), {"match": match}
    )
    if not total:
        return TipPage([], 0)
    # A word in most tips tells bm25 little and costs it a score for every match: then
    # the endorsements decide, read in order from an index.
    ranking = RANKED if total <= RANK_BY_RELEVANCE_UP_TO else BY_ENDORSEMENTS
    ids = list(await session.scalars(ranking, {"match": match, "limit": limit, "offset": offset}))
    return TipPage(await _tips_by_id(session, ids), total)


async def _search_like(
    session: AsyncSession, words: list[str], offset: int, limit: int
) -> TipPage:
    where: list[ColumnElement[bool]] = [Tip.hidden_at.is_(None)]
    for word in words:
        pattern = f"%{word}%"
        where.append(Tip.title.ilike(pattern) | Tip.text.ilike(pattern))
    total = await session.scalar(select(func.count()).select_from(Tip).where(*where)) or 0
    ids = list(
        await session.scalars(
            select(Tip.id)
            .where(*where)
            .order_by(Tip.endorsement_count.desc(), Tip.id.desc())
            .offset(offset)
            .limit(limit)
        )
    )
    return TipPage(await _tips_by_id(session, ids), total)


async def _tips_by_id(session: AsyncSession, ids: list[int]) -> list[Tip]:
    if not ids:
        return []
    tips = await session.scalars(
        select(Tip).where(Tip.id.in_(ids)).options(selectinload(Tip.partner))
    )
    by_id = {tip.id: tip for tip in tips}
    return [by_id[tip_id] for tip_id in ids if tip_id in by_id]


async def get_tip(session: AsyncSession, tip_id: int) -> Tip | None:
    """Return a visible tip with its partner, or None."""
    return await session.scalar(
        select(Tip)
        .where(Tip.id == tip_id, Tip.hidden_at.is_(None))
        .options(selectinload(Tip.partner))
    )
