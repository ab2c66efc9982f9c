"""Durations as people write them for reminders: ``7d``, ``2h``, ``1h30m``."""

from __future__ import annotations

import re

DURATION = re.compile(r"^(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,5})m)?$")
# Reminders more than this far ahead are of no use to anyone (and keep numbers sane).
LONGEST = 60 * 24 * 60  # minutes: 60 days


def parse_minutes(text: str) -> int | None:
    """Return the minutes of a duration such as ``1h30m``, or None if it is not one."""
    match = DURATION.match(text.strip().lower())
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes = (int(part or 0) for part in match.groups())
    total = days * 1440 + hours * 60 + minutes
    return total if 0 < total <= LONGEST else None


def format_minutes(minutes: int) -> str:
    """Write minutes the way they are typed: ``1d``, ``2h``, ``1h30m``."""
    days, rest = divmod(minutes, 1440)
    hours, rest = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{rest}m" if rest else ""]
    return "".join(parts)
