"""Reply markup: user text is escaped once, and renders as plain text for the console."""

from markupsafe import Markup

from bot.markup import (
    ALLOWED_TAGS,
    blocks,
    bold,
    code,
    lines,
    link,
    shorten,
    split_markup,
    to_plain,
    utf16_length,
    visible_length,
)
from tests.helpers import assert_well_formed
from tests.telegram_peer import parse_html


def test_user_text_is_escaped_exactly_once() -> None:
    text = bold("<b>Müller & Söhne</b> &amp;")
    assert str(text) == "<b>&lt;b&gt;Müller &amp; Söhne&lt;/b&gt; &amp;amp;</b>"
    # Markup that is already safe is not escaped a second time.
    assert str(lines([text, "x < y"])) == str(text) + "\nx &lt; y"


def test_link_refuses_other_schemes() -> None:
    assert str(link("javascript:alert(1)", "klick")) == "klick"
    assert str(link("https://example.org/?a=1&b=2", "Seite")) == (
        '<a href="https://example.org/?a=1&amp;b=2">Seite</a>'
    )


def test_plain_text_keeps_what_a_reader_needs() -> None:
    text = blocks(
        [
            Markup("{} {}").format(bold("Tipp <1>"), code("#2")),
            Markup("💻 {}").format(link("https://example.org/x", "online")),
        ]
    )
    assert to_plain(text) == "Tipp <1> #2\n\n💻 online (https://example.org/x)"


def test_shorten_cuts_at_a_word_and_marks_the_cut() -> None:
    assert shorten("Wärmepumpe   ersetzt\nGaskessel", 100) == "Wärmepumpe ersetzt Gaskessel"
    assert shorten("Wärmepumpe ersetzt Gaskessel", 20) == "Wärmepumpe ersetzt…"
    assert len(shorten("x" * 5000, 200)) == 200


def test_every_tag_of_the_subset_passes_telegrams_html_parser() -> None:
    for tag in sorted(ALLOWED_TAGS):
        attributes = ' href="https://example.org/?a=1&amp;b=2"' if tag == "a" else ""
        text, entities = parse_html(f"<{tag}{attributes}>Wärme &lt;&amp;&gt; 😀</{tag}>")
        assert text == "Wärme <&> 😀", tag
        assert len(entities) == 1, tag


def test_short_text_is_one_part() -> None:
    text = bold("kurz")
    assert split_markup(text, 4096) == [text]


def test_long_text_splits_at_blank_lines_first() -> None:
    cards = [Markup("<b>Tipp {}</b>\n{}").format(i, "Wort " * 30) for i in range(40)]
    text = blocks(cards)
    parts = split_markup(text, 1000)
    assert len(parts) > 1
    for part in parts:
        assert visible_length(part) <= 1000
        assert_well_formed(part)
        assert part.startswith("<b>Tipp ")
    assert "".join(to_plain(part) for part in parts).replace("\n", "").replace(" ", "") == (
        to_plain(text).replace("\n", "").replace(" ", "")
    )


def test_a_tag_open_at_a_cut_is_closed_and_opened_again() -> None:
    text = Markup("<b>{}</b>").format("Wärmepumpe " * 1000)
    parts = split_markup(text, 4096, utf16_length)
    assert len(parts) == 3
    for part in parts:
        assert part.startswith("<b>")
        assert part.endswith("</b>")
        assert visible_length(part, utf16_length) <= 4096


def test_one_huge_word_with_entities_and_emoji_is_cut_safely() -> None:
    text = Markup("<i>{}</i>").format("&<😀>" * 3000)
    parts = split_markup(text, 4096, utf16_length)
    for part in parts:
        assert_well_formed(part)
        assert 0 < visible_length(part, utf16_length) <= 4096
    assert "".join(to_plain(part) for part in parts) == "&<😀>" * 3000


def test_utf16_counts_emoji_twice() -> None:
    assert utf16_length("a😀") == 3
