"""Translations and local formats: each request speaks its member's language.

Dispatch sets the language for the unit of work it runs; handlers call ``_()`` and the
format helpers without passing a locale around, the way aiogram's i18n middleware does.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
import gettext
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton, format_time, format_timedelta
from babel.numbers import format_decimal
from babel.support import Translations

LANGUAGES = ("de", "en")
Choice = TypeVar("Choice", bound=enum.StrEnum)
DOMAIN = "klimabot"
LOCALE_DIR = Path(__file__).parent / "locale"


@dataclass(frozen=True, slots=True)
class Localizer:
    """A language and a time zone, with the catalog that goes with the language."""

    language: str
    timezone: ZoneInfo
    translations: gettext.NullTranslations


@cache
def _translations(language: str) -> gettext.NullTranslations:
    return Translations.load(str(LOCALE_DIR), [language], DOMAIN)


def localizer(language: str, timezone: ZoneInfo) -> Localizer:
    """Return the localizer for a language (falling back to German) and a time zone."""
    language = language if language in LANGUAGES else LANGUAGES[0]
    return Localizer(language, timezone, _translations(language))


_current: contextvars.ContextVar[Localizer] = contextvars.ContextVar(
    # A Localizer is a frozen dataclass, so sharing the default is safe.
    "klimabot_localizer",
    default=localizer("de", ZoneInfo("Europe/Berlin")),  # noqa: B039
)


def current() -> Localizer:
    """Return the localizer of the unit of work that is running."""
    return _current.get()


@contextmanager
def using(loc: Localizer) -> Iterator[Localizer]:
    """Speak the given language and use its time zone for the duration of the block."""
    token = _current.set(loc)
    try:
        yield loc
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """Translate a message into the current language."""
    return _current.get().translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message whose form depends on a count."""
    return _current.get().translations.ngettext(singular, plural, n)


def in_every_language(message: str) -> set[str]:
    """Return a message as it reads in each supported language, e.g. to parse user input."""
    return {_translations(language).gettext(message) for language in LANGUAGES}


def parse_choice(word: str, labels: Mapping[Choice, str]) -> Choice | None:
    """Return the choice a person typed: its value or its label in any supported language."""
    word = word.strip().casefold()
    for choice, label in labels.items():
        if word == choice.value or word in {name.casefold() for name in in_every_language(label)}:
            return choice
    return None


def N_(message: str) -> str:
    """Mark a message for translation later, where it is shown."""
    return message


def local(moment: dt.datetime) -> dt.datetime:
    """Return a UTC moment in the network's time zone."""
    return moment.astimezone(_current.get().timezone)


def format_date(moment: dt.datetime | dt.date) -> str:
    """Return a date with its weekday, such as ``Mi., 29. März 2023``."""
    if isinstance(moment, dt.datetime):
        moment = local(moment)
    return str(format_skeleton("yMMMEd", moment, locale=_locale()))


def format_month(day: dt.date) -> str:
    """Return a month and year, such as ``Oktober 2022``."""
    return str(format_skeleton("yMMMM", day, locale=_locale()))


def format_clock(moment: dt.datetime) -> str:
    """Return the local time of day, such as ``14:00``."""
    return str(format_time(local(moment), "short", locale=_locale()))


def format_when(starts: dt.datetime, ends: dt.datetime | None = None) -> str:
    """Return when something happens in local time, with the end time if it is known."""
    date, start = format_date(starts), format_clock(starts)
    if ends is None:
        return _("{date}, {time}").format(date=date, time=start)
    if local(ends).date() == local(starts).date():
        return _("{date}, {start}–{end}").format(date=date, start=start, end=format_clock(ends))
    return _("{start} until {end}").format(
        start=_("{date}, {time}").format(date=date, time=start),
        end=_("{date}, {time}").format(date=format_date(ends), time=format_clock(ends)),
    )


def format_time_left(left: dt.timedelta) -> str:
    """Return how long until something, such as ``in 2 Stunden`` or ``in 40 Minuten``."""
    # Whole minutes: a reminder sent a moment after its time still says "in 1 Minute".
    left = dt.timedelta(minutes=max(1, round(left.total_seconds() / 60)))
    return str(format_timedelta(left, threshold=1, add_direction=True, locale=_locale()))


def format_number(value: float, digits: int = 1) -> str:
    """Return a number in the current language's format, such as ``4,2``."""
    return str(format_decimal(round(value, digits), locale=_locale()))


@cache
def _babel_locale(language: str) -> Locale:
    return Locale.parse(language)


def _locale() -> Locale:
    return _babel_locale(_current.get().language)
