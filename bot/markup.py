"""Safe reply markup: a small HTML subset that Telegram and Matrix both render.

User-provided text is escaped exactly once, when it is put into a ``Markup`` template;
``Markup`` values are never escaped again.
"""

from __future__ import annotations

from collections.abc import Iterable
from html.parser import HTMLParser
from urllib.parse import urlsplit

from markupsafe import Markup, escape

ALLOWED_TAGS = frozenset({"b", "i", "u", "s", "code", "pre", "a", "blockquote"})


def bold(text: str) -> Markup:
    """Return text in bold."""
    return Markup("<b>{}</b>").format(text)


def italic(text: str) -> Markup:
    """Return text in italics."""
    return Markup("<i>{}</i>").format(text)


def code(text: str) -> Markup:
    """Return text as inline code, e.g. a command to type."""
    return Markup("<code>{}</code>").format(text)


def link(url: str, label: str | None = None) -> Markup:
    """Return a link, or the plain label when the URL is not http(s)."""
    if urlsplit(url).scheme not in {"http", "https"}:
        return escape(label or url)
    return Markup('<a href="{}">{}</a>').format(url, label or url)


def shorten(text: str, limit: int) -> str:
    """Cut text to at most ``limit`` characters at a word boundary, marking the cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut + "…"


def lines(parts: Iterable[str | Markup | None]) -> Markup:
    """Join the given parts with line breaks, escaping plain strings and skipping None."""
    return Markup("\n").join(part for part in parts if part is not None)


def blocks(parts: Iterable[Markup | str | None]) -> Markup:
    """Join the given parts with blank lines between them."""
    return Markup("\n\n").join(part for part in parts if part is not None)


class _PlainText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href:
            href = self._href.pop()
            if href and not "".join(self.out).endswith(href):
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        self.out.append(data)


def to_plain(text: Markup) -> str:
    """Render reply markup as plain text: tags dropped, links shown with their address."""
    parser = _PlainText()
    parser.feed(str(text))
    parser.close()
    return "".join(parser.out)
