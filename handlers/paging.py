"""Paging of long lists: a trailing ``#N`` picks the page, buttons move between pages."""

from __future__ import annotations

import math
import re

from bot.core import Button
from bot.i18n import _

PAGE = re.compile(r"^#(\d{1,4})$")


def split_page(args: str) -> tuple[str, int]:
    """Split a trailing page marker such as ``#2`` off the arguments."""
    words = args.split()
    if words and (match := PAGE.match(words[-1])):
        return " ".join(words[:-1]), max(1, int(match.group(1)))
    return " ".join(words), 1


def page_count(total: int, size: int) -> int:
    """Return how many pages a list of ``total`` items fills."""
    return max(1, math.ceil(total / size))


def page_buttons(command: str, args: str, page: int, pages: int) -> tuple[Button, ...]:
    """Return previous/next buttons for a paged list, or none if it fits one page."""
    buttons = []
    if page > 1:
        buttons.append(Button(_("◀ Previous"), command, f"{args} #{page - 1}".strip()))
    if page < pages:
        buttons.append(Button(_("Next ▶"), command, f"{args} #{page + 1}".strip()))
    return tuple(buttons)
