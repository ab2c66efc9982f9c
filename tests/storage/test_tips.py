"""Tip search on a real SQLite database: German words, prefixes, ranking, hostile input."""

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Category, Tip, utcnow
from storage.tips import get_tip, search_tips, search_words, tips_in_category, top_tips
from tests.helpers import add_partner, add_tip


@pytest.fixture
async def tips(session: AsyncSession) -> dict[str, Tip]:
    partner = await add_partner(session)
    found = {
        "pump": await add_tip(
            session, partner, "Luft-Wasser-Wärmepumpe ersetzt Gaskessel", category=Category.HEAT
        ),
        "pumps": await add_tip(
            session,
            partner,
            "Warmwasser",
            "Zwei Wärmepumpen und Solarthermie",
            category=Category.HEAT,
            endorsements=3,
        ),
        "air": await add_tip(
            session,
            partner,
            "Druckluftleckagen beseitigt",
            "Leckagen mit Ultraschall gesucht",
            category=Category.PROCESSES,
            co2=4.2,
        ),
        "bike": await add_tip(
            session,
            partner,
            "Dienstfahrräder",
            "Dienstfahrräder statt Dienstwagen",
            category=Category.MOBILITY,
            endorsements=1,
        ),
    }
    await session.commit()
    return found


async def titles(session: AsyncSession, query: str) -> list[str]:
    return [tip.title for tip in (await search_tips(session, query)).tips]


async def test_a_prefix_finds_singular_plural_and_compounds(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    found = await titles(session, "Wärmepump")
    assert set(found) == {tips["pump"].title, tips["pumps"].title}


async def test_umlauts_match_with_or_without_dots_and_in_any_case(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    assert len(await titles(session, "WÄRMEPUMPE")) == 2
    assert len(await titles(session, "warmepumpe")) == 2


async def test_endorsements_lift_a_tip_among_equal_matches(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    # Both mention the word once; the endorsed one comes first.
    assert (await titles(session, "Wärmepumpen"))[0] == "Warmwasser"


async def test_all_words_must_match(session: AsyncSession, tips: dict[str, Tip]) -> None:
    assert await titles(session, "Dienstfahrräder Dienstwagen") == ["Dienstfahrräder"]
    assert await titles(session, "Dienstfahrräder Gaskessel") == []


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "*",
        "NEAR(",
        "OR",
        "a OR b",
        'Wärme" OR "x',
        "tips_fts MATCH 1; DROP TABLE tips",
        "<b>Wärme</b>",
        "😀 Wärmepumpe 😀",
        "x" * 5000,
        "\u0000\u200b",
    ],
)
async def test_search_syntax_and_hostile_text_are_just_words(
    session: AsyncSession, tips: dict[str, Tip], query: str
) -> None:
    page = await search_tips(session, query)
    assert page.total == len(page.tips)
    assert await session.scalar(select(Tip.id).where(Tip.id == tips["pump"].id)) is not None


async def test_html_and_emoji_around_a_word_still_find_it(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    assert len(await titles(session, "<b>Wärmepumpe</b> 😀")) == 2


def test_search_words_drop_syntax_and_cap_the_count() -> None:
    assert search_words('"Wärme*pumpe" NEAR(') == ["Wärme", "pumpe", "NEAR"]
    assert len(search_words(" ".join(f"w{i}" for i in range(50)))) == 8


async def test_an_edited_tip_is_found_by_its_new_words(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    await session.execute(
        update(Tip).where(Tip.id == tips["bike"].id).values(text="Lastenräder für die Post")
    )
    await session.commit()
    assert await titles(session, "Lastenrad") == ["Dienstfahrräder"]
    assert await titles(session, "Dienstwagen") == []


async def test_hidden_tips_are_neither_found_nor_shown(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    await session.execute(update(Tip).where(Tip.id == tips["air"].id).values(hidden_at=utcnow()))
    await session.commit()
    assert await titles(session, "Druckluft") == []
    assert await get_tip(session, tips["air"].id) is None
    assert (await top_tips(session)).total == 3


async def test_a_hidden_tip_comes_back_when_shown_again(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    await session.execute(update(Tip).where(Tip.id == tips["air"].id).values(hidden_at=utcnow()))
    await session.commit()
    await session.execute(
        update(Tip).where(Tip.id == tips["air"].id).values(hidden_at=None, title="Druckluft")
    )
    await session.commit()
    assert await titles(session, "Druckluft") == ["Druckluft"]
    assert (await search_tips(session, "Ultraschall")).total == 1


async def test_words_in_very_many_tips_are_ranked_by_endorsements(
    session: AsyncSession, tips: dict[str, Tip], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.tips.RANK_BY_RELEVANCE_UP_TO", 1)
    page = await search_tips(session, "Dienst", limit=1)
    assert (page.total, [tip.title for tip in page.tips]) == (1, ["Dienstfahrräder"])
    both = await search_tips(session, "Wärmepump")
    assert [tip.title for tip in both.tips] == ["Warmwasser", tips["pump"].title]
    second = await search_tips(session, "Wärmepump", offset=1, limit=1)
    assert [tip.title for tip in second.tips] == [tips["pump"].title]


async def test_browsing_ranks_by_endorsements_and_pages(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    first = await top_tips(session, limit=2)
    assert [tip.title for tip in first.tips] == ["Warmwasser", "Dienstfahrräder"]
    assert first.total == 4
    second = await top_tips(session, offset=2, limit=2)
    assert {tip.title for tip in second.tips} == {tips["pump"].title, tips["air"].title}
    heat = await tips_in_category(session, Category.HEAT)
    assert [tip.title for tip in heat.tips] == ["Warmwasser", tips["pump"].title]
