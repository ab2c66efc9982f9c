"""Dates and times as coordinators type them: German and ISO, ranges, refusals, DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot import i18n
from bot.core import UserError
from handlers.moments import parse_end, parse_span
from tests.helpers import NOW

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(month: int, day: int, hour: int, minute: int = 0, year: int = 2027) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(dt.UTC)


def refusal(text: str, now: dt.datetime = NOW) -> str:
    with pytest.raises(UserError) as refused:
        parse_span(text, now, BERLIN)
    assert not refused.value.show_usage
    return refused.value.message


@pytest.mark.parametrize(
    ("typed", "starts", "ends"),
    [
        ("29.03.2027 14:00", berlin(3, 29, 14), None),
        ("29.03.27 14:00", berlin(3, 29, 14), None),
        ("29.3. 14 Uhr", berlin(3, 29, 14), None),
        ("29.3.2027, 14.30 Uhr", berlin(3, 29, 14, 30), None),
        ("29.03.2027 um 14:00", berlin(3, 29, 14), None),
        ("29.03.2027 14:00-17:00", berlin(3, 29, 14), berlin(3, 29, 17)),
        ("29.03.2027 14–17 Uhr", berlin(3, 29, 14), berlin(3, 29, 17)),
        ("29.03.2027 14 Uhr - 17:30 Uhr", berlin(3, 29, 14), berlin(3, 29, 17, 30)),
        ("29.03.2027 14:00 bis 30.03.2027 12:00", berlin(3, 29, 14), berlin(3, 30, 12)),
        ("2027-03-29 14:00", berlin(3, 29, 14), None),
        ("2027-03-29T14:00", berlin(3, 29, 14), None),
        ("2027-03-29T14:00:00", berlin(3, 29, 14), None),
        ("2027-03-29 14:00-17:00", berlin(3, 29, 14), berlin(3, 29, 17)),
        # With T, a range end cannot be an offset: real offsets lie between -12 and +14 h.
        ("2027-03-29T14:00-17:00", berlin(3, 29, 14), berlin(3, 29, 17)),
        # An offset counts as given, whatever the network's time zone.
        ("2027-03-29T14:00+02:00", berlin(3, 29, 14), None),
        ("2027-03-29T12:00Z", berlin(3, 29, 14), None),
        ("2027-03-29T07:00-05:00", berlin(3, 29, 14), None),
        # Winter time: the same wall clock is another UTC hour.
        ("15.01.2027 14:00", berlin(1, 15, 14), None),
    ],
)
def test_german_and_iso_dates_are_read_in_network_time(
    typed: str, starts: dt.datetime, ends: dt.datetime | None
) -> None:
    span = parse_span(typed, NOW, BERLIN)
    assert (span.starts, span.ends, span.notes) == (starts, ends, ())


def test_a_day_without_a_year_is_the_next_one_to_come() -> None:
    # On 25 November 2026, 1 December is this year's; 29 March is next year's.
    assert parse_span("1.12. 18 Uhr", NOW, BERLIN).starts == berlin(12, 1, 18, year=2026)
    assert parse_span("29.3. 14 Uhr", NOW, BERLIN).starts == berlin(3, 29, 14)
    # Earlier today is next year's too.
    assert parse_span("25.11. 9 Uhr", NOW, BERLIN).starts == berlin(11, 25, 9)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("31.02.2027 14:00", "Einen Tag 31.02.2027 gibt es im Kalender nicht."),
        ("31.02. 14:00", "Einen Tag 31.02. gibt es im Kalender nicht."),
        ("2027-13-01 14:00", "Einen Tag 2027-13-01 gibt es im Kalender nicht."),
        (
            "29.03.2027 25:00",
            "25:00 ist keine Uhrzeit: Stunden gehen von 0 bis 23, Minuten von 0 bis 59.",
        ),
        (
            "29.03.2027 14:61",
            "14:61 ist keine Uhrzeit: Stunden gehen von 0 bis 23, Minuten von 0 bis 59.",
        ),
        (
            "24.11.2026 14:00",
            "Di., 24. Nov. 2026, 14:00 Uhr liegt in der Vergangenheit. "
            "Bitte geben Sie ein Datum und eine Uhrzeit in der Zukunft an.",
        ),
        (
            "29.03.2027 14:00-13:00",
            "Das Ende (Mo., 29. März 2027, 13:00 Uhr) muss nach dem Beginn "
            "(Mo., 29. März 2027, 14:00 Uhr) liegen.",
        ),
        (
            "29.03.2027 14:00-14:00",
            "Das Ende (Mo., 29. März 2027, 14:00 Uhr) muss nach dem Beginn "
            "(Mo., 29. März 2027, 14:00 Uhr) liegen.",
        ),
        ("29.03.2027", "Bitte geben Sie auch eine Uhrzeit an, zum Beispiel 29.03.2027 14:00."),
        (
            "nächsten Montag",
            "„nächsten Montag“ kann ich nicht als Datum und Uhrzeit lesen. Schreiben Sie es wie "
            "29.03.2027 14:00 oder 2027-03-29 14:00, mit einem Ende wie 14:00-17:00.",
        ),
        (
            "29.03.2027 14:00 Rathaus",
            "„29.03.2027 14:00 Rathaus“ kann ich nicht als Datum und Uhrzeit lesen. Schreiben "
            "Sie es wie 29.03.2027 14:00 oder 2027-03-29 14:00, mit einem Ende wie 14:00-17:00.",
        ),
    ],
)
def test_impossible_dates_are_refused_saying_what_is_wrong(typed: str, message: str) -> None:
    assert refusal(typed) == message


def test_a_time_the_clocks_skip_in_spring_is_refused() -> None:
    # 28 March 2027: 02:00 becomes 03:00 in Berlin.
    assert refusal("28.03.2027 02:30") == (
        "02:30 am So., 28. März 2027 gibt es in Europe/Berlin nicht: In dieser Nacht werden "
        "die Uhren vorgestellt. Bitte wählen Sie eine andere Uhrzeit."
    )
    assert parse_span("28.03.2027 03:00", NOW, BERLIN).starts == dt.datetime(
        2027, 3, 28, 1, 0, tzinfo=dt.UTC
    )


def test_a_time_the_clocks_repeat_in_autumn_is_the_first_and_says_so() -> None:
    # 31 October 2027: 03:00 becomes 02:00 again; 02:30 happens at 00:30 and 01:30 UTC.
    span = parse_span("31.10.2027 02:30", NOW, BERLIN)
    assert span.starts == dt.datetime(2027, 10, 31, 0, 30, tzinfo=dt.UTC)
    assert span.notes == (
        "02:30 am So., 31. Okt. 2027 gibt es zweimal, weil in dieser Nacht die Uhren "
        "zurückgestellt werden: Ich habe die erste genommen (02:30 CEST). Für die zweite "
        "schreiben Sie 2027-10-31T02:30+01:00.",
    )
    second = parse_span("2027-10-31T02:30+01:00", NOW, BERLIN)
    assert (second.starts, second.notes) == (dt.datetime(2027, 10, 31, 1, 30, tzinfo=dt.UTC), ())


def test_refusals_speak_english_to_english_speakers() -> None:
    with i18n.using(i18n.localizer("en", BERLIN)):
        assert refusal("31.02.2027 14:00") == "There is no day 31.02.2027 in the calendar."
        assert refusal("29.03.2027 25:00").startswith("25:00 is not a time of day")
        assert refusal("01.01.2026 10:00").endswith(
            "is in the past. Please give a date and time still to come."
        )


@pytest.mark.parametrize(
    ("typed", "ends"),
    [
        ("17:00", berlin(3, 29, 17)),
        ("17 Uhr", berlin(3, 29, 17)),
        ("30.03.2027 12:00", berlin(3, 30, 12)),
        ("2027-03-30T12:00", berlin(3, 30, 12)),
    ],
)
def test_an_end_is_a_time_that_day_or_a_date_and_time(typed: str, ends: dt.datetime) -> None:
    assert parse_end(typed, berlin(3, 29, 14), NOW, BERLIN) == ends


def test_an_end_before_the_start_is_refused() -> None:
    with pytest.raises(UserError, match="muss nach dem Beginn"):
        parse_end("13:00", berlin(3, 29, 14), NOW, BERLIN)
