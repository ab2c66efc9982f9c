"""Tip search on a real SQLite database: German spellings, stems, compounds, ranking."""

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import (
    SchemaState,
    alembic_config,
    create_engine,
    schema_state,
    session_factory,
    upgrade,
)
from storage.models import Category, Tip, utcnow
from storage.search import query_stems, search_words
from storage.tips import get_tip, search_tips, tips_in_category, top_tips
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


async def test_endorsements_lift_a_tip_among_equal_matches(session: AsyncSession) -> None:
    partner = await add_partner(session)
    await add_tip(session, partner, "Heizung", "Eine Wärmepumpe im Lager")
    await add_tip(session, partner, "Büro", "Eine Wärmepumpe im Büro", endorsements=3)
    await session.commit()
    assert await titles(session, "Wärmepumpe") == ["Büro", "Heizung"]


@pytest.mark.parametrize(
    "query", ["Waermepumpe", "WAERMEPUMPE", "Warmepumpe", "Wärmepumpen", "wärmepumpe"]
)
async def test_spellings_and_plurals_find_the_same_tips(
    session: AsyncSession, tips: dict[str, Tip], query: str
) -> None:
    assert set(await titles(session, query)) == {tips["pump"].title, tips["pumps"].title}


async def test_a_word_finds_the_compounds_it_is_part_of(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    assert await titles(session, "rad") == ["Dienstfahrräder"]
    assert await titles(session, "Fahrräder") == ["Dienstfahrräder"]
    assert await titles(session, "luft") == [tips["pump"].title, "Druckluftleckagen beseitigt"]
    assert await titles(session, "Pumpen Gas") == [tips["pump"].title]


async def test_whole_words_rank_above_compounds_then_endorsements(session: AsyncSession) -> None:
    partner = await add_partner(session)
    await add_tip(session, partner, "Druckluftleckagen", endorsements=9)
    await add_tip(session, partner, "Halle", "Leckagen in der Halle", endorsements=1)
    await add_tip(session, partner, "Lager", "Eine Leckage im Lager")
    await session.commit()
    assert await titles(session, "Leckage") == ["Halle", "Lager", "Druckluftleckagen"]


@pytest.mark.parametrize("threshold", [1, 5000])
async def test_pages_run_from_whole_words_into_compounds(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    # With a threshold of 1 every group is ranked by endorsements alone.
    monkeypatch.setattr("storage.tips.RANK_BY_RELEVANCE_UP_TO", threshold)
    partner = await add_partner(session)
    for number in range(3):
        await add_tip(session, partner, f"Lastenrad {number}", endorsements=number + 5)
        await add_tip(session, partner, f"Rad {number}", endorsements=number)
    await session.commit()
    pages = [await search_tips(session, "Räder", offset=offset, limit=4) for offset in (0, 4)]
    assert [page.total for page in pages] == [6, 6]
    assert [[tip.title for tip in page.tips] for page in pages] == [
        ["Rad 2", "Rad 1", "Rad 0", "Lastenrad 2"],
        ["Lastenrad 1", "Lastenrad 0"],
    ]
    beyond = await search_tips(session, "Räder", offset=6, limit=4)
    assert (beyond.total, beyond.tips) == (6, [])


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
    assert query_stems("Wärmepumpen WAERMEPUMPE CO₂") == ["warmepump", "co2"]
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


async def test_a_hidden_tip_is_not_found_inside_compounds_either(
    session: AsyncSession, tips: dict[str, Tip]
) -> None:
    await session.execute(update(Tip).where(Tip.id == tips["bike"].id).values(hidden_at=utcnow()))
    await session.commit()
    assert await titles(session, "rad") == []
    await session.delete(tips["air"])
    await session.commit()
    assert await titles(session, "Leckage") == []


async def test_top_tips_are_the_most_endorsed_then_the_newest(session: AsyncSession) -> None:
    partner = await add_partner(session)
    for title, endorsements in [("alt", 2), ("neu", 2), ("beliebt", 5), ("still", 0)]:
        await add_tip(session, partner, title, endorsements=endorsements, co2=float(len(title)))
    await session.commit()
    assert [tip.title for tip in (await top_tips(session)).tips] == [
        "beliebt",
        "neu",
        "alt",
        "still",
    ]


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_an_existing_database_upgrades_and_its_tips_are_found_the_new_ways(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/old.db")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_to, "0004")
            await connection.execute(
                text(
                    "INSERT INTO partners (id, name, sector, joined, created_at) "
                    "VALUES (1, 'Bäckerei Schmitz', '', '2022-10-01', '2022-10-01 00:00:00')"
                )
            )
            for tip_id, title, hidden in [
                (1, "Wärmepumpe im Laden", None),
                (2, "Dienstfahrräder für das Team", None),
                (3, "Druckluftleckagen", "2026-01-01 00:00:00"),
            ]:
                await connection.execute(
                    text(
                        "INSERT INTO tips (id, partner_id, title, text, category, "
                        "endorsement_count, hidden_at, created_at) VALUES (:id, 1, :title, "
                        ":title, 'energy', 0, :hidden, '2026-01-01 00:00:00')"
                    ),
                    {"id": tip_id, "title": title, "hidden": hidden},
                )
        assert await schema_state(engine) is SchemaState.BEHIND
        await upgrade(engine)
        assert await schema_state(engine) is SchemaState.CURRENT
        async with session_factory(engine)() as session:
            assert await titles(session, "Waermepumpen") == ["Wärmepumpe im Laden"]
            assert await titles(session, "rad") == ["Dienstfahrräder für das Team"]
            assert await titles(session, "Leckage") == []
            # The index follows the tips after the upgrade too.
            await session.execute(update(Tip).where(Tip.id == 3).values(hidden_at=None))
            await session.commit()
            assert await titles(session, "Leckage") == ["Druckluftleckagen"]
    finally:
        await engine.dispose()
