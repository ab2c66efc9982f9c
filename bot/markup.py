"""Safe reply markup: a small HTML subset that Telegram and Matrix both render.

User-provided text is escaped exactly once, when it is put into a ``Markup`` template;
``Markup`` values are never escaped again.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
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


_TOKEN = re.compile(r"(<[^>]*>|\n\n|\n|[ \t]+)")
_TAG_NAME = re.compile(r"^</?\s*([a-zA-Z0-9-]+)")


def utf16_length(text: str) -> int:
    """Return the length of text in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def visible_length(text: str, length: Callable[[str], int] = len) -> int:
    """Return how long text is once its tags are dropped and its entities resolved."""
    return length(html.unescape(re.sub(r"<[^>]*>", "", text)))


def split_markup(text: Markup, limit: int, length: Callable[[str], int] = len) -> list[Markup]:
    """Split reply markup into parts of at most ``limit`` visible characters.

    Parts end at a blank line, else a line break, else a space where possible; a tag open
    at a cut is closed at the end of one part and opened again at the start of the next.
    """
    if visible_length(text, length) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0

    def cut(at: int) -> None:
        nonlocal current, size
        head, tail = current[:at], current[at:]
        stack: list[str] = []  # the tags open at the cut, as written
        for token in head:
            _track(token, stack)
        if any(not token.startswith("<") and token.strip() for token in head):
            closing = "".join(f"</{_tag_name(tag)}>" for tag in reversed(stack))
            parts.append("".join(head).rstrip() + closing)
        current = [*stack, *_strip_leading_space(tail)]
        size = sum(_size(token, length) for token in current)

    for piece in _pieces(str(text), limit, length):
        piece_size = _size(piece, length)
        if size + piece_size > limit and size > 0:
            cut(_break_point(current))
            if size + piece_size > limit:
                cut(len(current))
        current.append(piece)
        size += piece_size
    cut(len(current))
    return [Markup(part) for part in parts]


def _pieces(text: str, limit: int, length: Callable[[str], int]) -> Iterable[str]:
    for token in _TOKEN.split(text):
        if not token:
            continue
        if token.startswith("<") or _size(token, length) <= limit:
            yield token
            continue
        # A word longer than a whole part: cut it by characters, entities kept whole.
        plain = html.unescape(token)
        step = max(1, limit // 2)
        for start in range(0, len(plain), step):
            yield str(escape(plain[start : start + step]))


def _size(token: str, length: Callable[[str], int]) -> int:
    return 0 if token.startswith("<") else length(html.unescape(token))


def _tag_name(tag: str) -> str:
    match = _TAG_NAME.match(tag)
    return match.group(1).lower() if match else ""


def _track(token: str, stack: list[str]) -> None:
    if not token.startswith("<") or token.endswith("/>"):
        return
    if token.startswith("</"):
        if stack and _tag_name(stack[-1]) == _tag_name(token):
            stack.pop()
    else:
        stack.append(token)


def _break_point(tokens: list[str]) -> int:
    # The latest blank line, else line break, else space, in the later half of the part.
    for separator in ("\n\n", "\n"):
        for index in range(len(tokens) - 1, len(tokens) // 2, -1):
            if tokens[index] == separator:
                return index
    for index in range(len(tokens) - 1, 0, -1):
        if tokens[index].isspace():
            return index
    return len(tokens)


def _strip_leading_space(tokens: list[str]) -> list[str]:
    while tokens and not tokens[0].startswith("<") and tokens[0].isspace():
        tokens = tokens[1:]
    return tokens
