"""Tips as a member finds them: browse, search, categories, one tip in full."""

import pytest

from bot.markup import to_plain
from tests.helpers import Chat, assert_well_formed, buttons


@pytest.fixture(autouse=True)
async def network(demo: None) -> None:
    """Every test here runs on the demo network."""


async def test_tips_without_words_shows_the_best_first_and_pages(member: Chat) -> None:
    text = await member.send("/tips")
    assert text.startswith("Tipps aus dem Netzwerk (1/3)")
    assert buttons(member.last)[-1] == "tips:#2"
    second = to_plain((await member.press("Weiter")).text)
    assert second.startswith("Tipps aus dem Netzwerk (2/3)")
    assert buttons(member.last)[-2:] == ["tips:#1", "tips:#3"]


async def test_search_finds_german_words_by_prefix(member: Chat) -> None:
    text = await member.send("/tips Wärmepumpe")
    assert text.startswith("Tipps zu „Wärmepumpe“ (1/1)")
    assert "Luft-Wasser-Wärmepumpe ersetzt Gaskessel" in text
    assert "Warmwasser mit Wärmepumpen und Solarthermie" in text
    assert "Rheinhafen Logistik Terhorst GmbH · Wärme · ≈ 18,5 t CO₂e/Jahr" in text


async def test_a_category_in_either_language(member: Chat) -> None:
    german = await member.send("/tips Mobilität")
    assert german.startswith("Tipps: Mobilität (1/1)")
    assert await member.send("/tips mobility") == german


async def test_search_keeps_the_words_when_paging(member: Chat) -> None:
    await member.send("/tips der")
    assert "tips:der:#2" in buttons(member.last)


async def test_nothing_found_names_the_words_and_suggests_categories(member: Chat) -> None:
    assert await member.send("/tips Kernfusion") == (
        "Keine Tipps zu „Kernfusion“ gefunden.\n"
        "Versuchen Sie ein kürzeres Wort oder eine Kategorie: Energie, Wärme, Mobilität, "
        "Beschaffung, Gebäude, Prozesse, Sonstiges"
    )


@pytest.mark.parametrize(
    "words", ['"', "*", "NEAR(", "OR", '" OR "x', "<b>", "</a>", "&amp;", "😀🌍", "\u200b"]
)
async def test_search_syntax_html_and_emoji_are_answered_safely(member: Chat, words: str) -> None:
    reply = await member.reply(f"/tips {words}")
    text = to_plain(reply.text)
    assert text.startswith("Keine Tipps zu „")
    # The words come back escaped inside the markup, and unchanged to the reader.
    assert f"„{words}“" in text
    assert_well_formed(reply.text)


async def test_html_in_search_words_is_shown_not_interpreted(member: Chat) -> None:
    reply = await member.reply("/tips <b>Wärme</b>")
    assert "&lt;b&gt;Wärme&lt;/b&gt;" in reply.text
    assert to_plain(reply.text).startswith("Tipps zu „<b>Wärme</b>“")


async def test_five_thousand_characters_of_search_are_cut_not_crashed(member: Chat) -> None:
    text = await member.send("/tips " + "Wärmepumpe " * 500)
    assert text.startswith("Tipps zu „Wärmepumpe Wärmepumpe")
    assert len(text) < 2000


async def test_one_tip_in_full(member: Chat) -> None:
    text = await member.send("/tip 2")
    assert text.startswith("Luft-Wasser-Wärmepumpe ersetzt Gaskessel #2\n\n")
    assert "Wärme · ≈ 18,5 t CO₂e/Jahr\nGeteilt von Rheinhafen Logistik Terhorst GmbH" in text


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        (
            "/tip",
            "Die Nummer des Tipps muss eine Zahl sein, wie /tips sie zeigt.\nSo geht’s: /tipp NR",
        ),
        (
            "/tip zwei",
            "Die Nummer des Tipps muss eine Zahl sein, wie /tips sie zeigt.\nSo geht’s: /tipp NR",
        ),
        ("/tip 4711", "Es gibt keinen Tipp #4711. /tips zeigt die Tipps."),
    ],
)
async def test_bad_tip_numbers(member: Chat, line: str, answer: str) -> None:
    assert await member.send(line) == answer


async def test_tips_in_english(member: Chat) -> None:
    await member.send("/language en")
    text = await member.send("/tips Wärmepumpe")
    assert text.startswith("Tips for “Wärmepumpe” (1/1)")
    assert "Rheinhafen Logistik Terhorst GmbH · Heat · ≈ 18.5 t CO₂e/year" in text


def _found(text: str) -> list[str]:
    """Return the tip numbers a list shows, in order."""
    return [word for word in text.split() if word.startswith("#") and word[1:].isdigit()]


@pytest.mark.parametrize("query", ["Waermepumpe", "Warmepumpe", "Wärmepumpen", "WÄRMEPUMPEN"])
async def test_german_spellings_and_plurals_find_what_the_word_finds(
    member: Chat, query: str
) -> None:
    expected = _found(await member.send("/tips Wärmepumpe"))
    assert len(expected) >= 3
    text = await member.send(f"/tips {query}")
    assert text.startswith(f"Tipps zu „{query}“ (1/")
    assert _found(text) == expected


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("rad", "Dienstfahrräder statt Dienstwagen"),
        ("Leckage", "Druckluftleckagen beseitigt"),
        ("Fahrräder", "Dienstfahrräder statt Dienstwagen"),
    ],
)
async def test_a_word_finds_the_tips_with_it_inside_a_compound(
    member: Chat, query: str, title: str
) -> None:
    assert title in await member.send(f"/tips {query}")


async def test_a_page_past_the_end_shows_the_last_page(member: Chat) -> None:
    last = await member.send("/tips #3")
    assert last.startswith("Tipps aus dem Netzwerk (3/3)")
    assert await member.send("/tips #4") == last
    search = await member.send("/tipps Wärmepumpe #7")
    assert search.startswith("Tipps zu „Wärmepumpe“ (1/1)")
    assert "Luft-Wasser-Wärmepumpe ersetzt Gaskessel" in search
