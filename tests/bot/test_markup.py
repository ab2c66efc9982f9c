"""Reply markup: user text is escaped once, and renders as plain text for the console."""

from markupsafe import Markup

from bot.markup import ALLOWED_TAGS, blocks, bold, code, lines, link, shorten, to_plain


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


def test_the_subset_is_what_telegram_and_matrix_both_render() -> None:
    assert {"b", "i", "u", "s", "code", "pre", "a", "blockquote"} == ALLOWED_TAGS
