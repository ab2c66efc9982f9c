"""The values of an import file: text, web addresses, dates, times, numbers, categories."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from urllib.parse import urlsplit

from pydantic import PlainValidator, ValidationInfo
from pydantic_core import PydanticCustomError
from sqlalchemy import String, inspect

from storage.models import Base, Category

CATEGORIES = tuple(category.value for category in Category)
# Network meetings and pact memberships of this world; year 1 or 9999 is a typing error.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2199
# More places than any network meeting has; beyond it is a typing error.
MAX_CAPACITY = 100_000
# More than any one organisation saves (a whole city emits a few million t CO2e a year).
MAX_CO2_T_PER_YEAR = 1_000_000

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?"
)
# Unicode's control characters (category Cc); long texts keep their line breaks and tabs.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_LONG = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def column_limit(model: type[Base], name: str) -> int:
    """Return the length of a text column, so the file is held to what the table takes."""
    column_type = inspect(model).columns[name].type
    assert isinstance(column_type, String)
    assert column_type.length is not None
    return column_type.length


def fail(code: str, **detail: str) -> PydanticCustomError:
    """Return the error of a problem code with its details."""
    # The code is the message: the operator reads the project's own templates, never these.
    return PydanticCustomError(code, code, detail)


def show(value: object) -> str:
    """Render a value from the file for a message, briefly."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    # Control characters would act on the operator's terminal instead of being seen.
    text = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)
    return text if len(text) <= 80 else text[:79] + "…"


def clean_long(value: str) -> str:
    """Drop trailing spaces of each line; they never mean anything and force quotes on export."""
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _check_text(value: object, limit: int | None, *, long: bool = False) -> str:
    if not isinstance(value, str):
        raise fail("wrong_type", value=show(value))
    text = clean_long(value) if long else value.strip()
    if limit is not None and len(text) > limit:
        raise fail("too_long", length=str(len(text)), limit=str(limit))
    if found := (_CONTROL_IN_LONG if long else _CONTROL).search(text):
        raise fail(
            "control_character",
            character=f"U+{ord(found.group()):04X}",
            position=str(found.start() + 1),
        )
    return text


def text(limit: int | None = None, *, long: bool = False) -> PlainValidator:
    """Accept text of at most limit characters without control characters, trimmed."""
    return PlainValidator(lambda value: _check_text(value, limit, long=long))


def url(limit: int) -> PlainValidator:
    """Accept an http(s) address of at most limit characters."""

    def check(value: object) -> str:
        text = _check_text(value, limit)
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", text):
            raise fail("bad_url", value=show(text))
        return text

    return PlainValidator(check)


def _in_range(year: int, value: object) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise fail(
            "date_out_of_range",
            value=show(value),
            earliest=str(EARLIEST_YEAR),
            latest=str(LATEST_YEAR),
        )


def date(value: object) -> dt.date:
    """Read a date written YYYY-MM-DD, in a sane range of years."""
    day: dt.date | None = None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        day = value
    elif isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            day = None
    if day is None:
        raise fail("not_a_date", value=show(value))
    _in_range(day.year, value)
    return day


def moment(value: object, info: ValidationInfo) -> dt.datetime:
    """Read a date and time as UTC; a time without offset is the network's wall-clock time."""
    moment: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and _DATETIME.fullmatch(value.strip()):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise fail("not_a_datetime", value=show(value))
    # Checked before any conversion: year 9999 plus an offset is no datetime at all.
    _in_range(moment.year, value)
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC)
    timezone: dt.tzinfo = (info.context or {}).get("timezone", dt.UTC)
    local = moment.replace(tzinfo=timezone)
    # A wall-clock time inside the spring-forward gap comes back as another time.
    if local.astimezone(dt.UTC).astimezone(timezone).replace(tzinfo=None) != moment:
        raise fail("no_such_time", value=show(value), timezone=str(timezone))
    return local.astimezone(dt.UTC)


def number(value: object) -> float:
    """Read an amount of t CO2e a year: a finite number from 0 to the maximum."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail("not_a_number", value=show(value))
    if isinstance(value, float) and not math.isfinite(value):
        raise fail("not_a_number", value=show(value))
    if value < 0:
        raise fail("negative", value=show(value))
    if value > MAX_CO2_T_PER_YEAR:
        raise fail("too_large", value=show(value), limit=str(MAX_CO2_T_PER_YEAR))
    return float(value)


def capacity(value: object) -> int:
    """Read a number of places: a whole number from 1 to the maximum."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_CAPACITY:
        raise fail("not_a_capacity", value=show(value), limit=str(MAX_CAPACITY))
    return value


def category(value: object) -> Category:
    """Read a tip's category by its English name."""
    if isinstance(value, str) and value in CATEGORIES:
        return Category(value)
    raise fail("unknown_category", value=show(value), allowed=", ".join(CATEGORIES))


def flag(value: object) -> bool:
    """Read true or false."""
    if isinstance(value, bool):
        return value
    raise fail("not_a_boolean", value=show(value))


def local_text(moment: dt.datetime, timezone: dt.tzinfo) -> str:
    """Write a moment as network-local wall-clock time, with its offset only if ambiguous."""
    local = moment.astimezone(timezone)
    timespec = "auto" if local.second or local.microsecond else "minutes"
    wall_clock = local.replace(tzinfo=None)
    # The hour when the clocks fall back happens twice; the offset says which one is meant.
    if wall_clock.replace(tzinfo=timezone) != moment:
        return local.isoformat(timespec=timespec)
    return wall_clock.isoformat(sep=" ", timespec=timespec)
