"""Reading command arguments the same way in every handler."""

from __future__ import annotations

from bot.core import UserError

MAX_ID_DIGITS = 9


def parse_id(text: str, message: str) -> int:
    """Return the number in ``12`` or ``#12``, or raise a UserError with the message."""
    digits = text.strip().removeprefix("#")
    if not digits.isdecimal() or len(digits) > MAX_ID_DIGITS:
        raise UserError(message)
    return int(digits)
