"""Shared CO2-saving tips: browsing by category and ranked full-text search."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.db import dialect_name
from storage.models import Category, Tip
from storage.search import MIN_PART, inner_forms, query_terms, search_words

RANK_BY_RELEVANCE_UP_TO = 5000
# The index (migration 0006_german_search) holds visible tips only. A match in the title
# counts three times one in the text; a match inside a compound word counts half.
RANKED = text(
    "SELECT tips.id FROM tips_search JOIN tips ON tips.id = tips_search.rowid "
    "WHERE tips_search MATCH :match "
    "ORDER BY bm25(tips_search, 3.0, 1.0, 0.5) * (1.0 + 0.2 * tips.endorsement_count), "
    "tips.id DESC LIMIT :limit OFFSET :offset"
)
# "+id" keeps SQLite on the (hidden_at, endorsement_count) index, in ranking order.
BY_ENDORSEMENTS = text(
    "SELECT id FROM tips WHERE hidden_at IS NULL "
    "AND +id IN (SELECT rowid FROM tips_search WHERE tips_search MATCH :match) "
    "ORDER BY endorsement_count DESC, id DESC LIMIT :limit OFFSET :offset"
)
COUNT = text("SELECT count(*) FROM tips_search WHERE tips_search MATCH :match")


@dataclass(frozen=True, slots=True)
class TipPage:
    """One page of tips and the number of tips that match in all."""

    tips: list[Tip]
    total: int


async def top_tips(session: AsyncSession, *, offset: int = 0, limit: int = 5) -> TipPage:
    """Return the visible tips, most endorsed first and the newest first among equals."""
    return await _browse(session, None, offset, limit)


async def tips_in_category(
    session: AsyncSession, category: Category, *, offset: int = 0, limit: int = 5
) -> TipPage:
    """Return the tips of one category, most endorsed first and the newest among equals."""
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
    """Return the tips that contain every word, whole words first, then inside compounds.

    Words are compared as storage.search stems them, so spelling variants (ae for ä) and
    inflections (plural) meet. A word that starts a word of the tip or sits inside a
    compound matches too, ranked after the tips that have every word whole. Within each
    group the best match comes first: on SQLite FTS5's bm25, weighted up by endorsements;
    elsewhere a plain substring match by endorsements. Only this function knows the
    difference.
    """
    terms = query_terms(query)
    if not terms:
        return TipPage([], 0)
    if dialect_name(session) != "sqlite":
        return await _search_like(session, search_words(query), offset, limit)
    anywhere, whole = _match_anywhere(terms), _match_whole(terms)
    total = await session.scalar(COUNT, {"match": anywhere}) or 0
    if not total:
        return TipPage([], 0)
    whole_total = await session.scalar(COUNT, {"match": whole}) or 0
    ids = await _ranked_ids(session, whole, whole_total, offset, limit)
    if len(ids) < limit and total > whole_total:
        ids += await _ranked_ids(
            session,
            f"({anywhere}) NOT ({whole})",
            total - whole_total,
            max(0, offset - whole_total),
            limit - len(ids),
        )
    return TipPage(await _tips_by_id(session, ids), total)


def _match_whole(terms: list[tuple[str, str]]) -> str:
    return " AND ".join(f"{{title text}} : {_phrase(stem)}" for _written, stem in terms)


def _match_anywhere(terms: list[tuple[str, str]]) -> str:
    return " AND ".join(_anywhere(written, stem) for written, stem in terms)


def _anywhere(written: str, stem: str) -> str:
    starts = f"{{title text}} : {_phrase(stem)}*"
    # Two letters found inside any word would find nearly everything: those start a word.
    if len(stem) < MIN_PART:
        return starts
    prefixes, parts = inner_forms(written, stem)
    inside = [f"parts : {_phrase(prefix)}*" for prefix in prefixes]
    inside += [f"parts : {_phrase(part)}" for part in parts]
    return f"({' OR '.join([starts, *inside])})"


def _phrase(word: str) -> str:
    # Quoted, FTS5 syntax in a word (OR, NEAR, *) is just text.
    return '"{}"'.format(word.replace('"', ""))


async def _ranked_ids(
    session: AsyncSession, match: str, count: int, offset: int, limit: int
) -> list[int]:
    if offset >= count:
        return []
    # A word in most tips tells bm25 little and costs it a score for every match: then
    # the endorsements decide, read in order from an index.
    ranking = RANKED if count <= RANK_BY_RELEVANCE_UP_TO else BY_ENDORSEMENTS
    return list(await session.scalars(ranking, {"match": match, "limit": limit, "offset": offset}))


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
