"""What can be wrong in an import file, and how each problem is said."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_PROBLEMS = 50


def N_(message: str) -> str:
    """Mark a message for translation; the bot translates it where it is shown."""
    return message


# English templates; the bot translates them, so each is marked for extraction.
PROBLEM_MESSAGES: dict[str, str] = {
    "yaml_syntax": N_("the file is not valid YAML (line {line}): {reason}"),
    "duplicate_key": N_("'{key}:' is written twice in the same block (line {line})"),
    "too_deep": N_(
        "the file is nested more than {limit} levels deep (line {line}); "
        "an import file needs only a few"
    ),
    "too_many_aliases": N_(
        "the file's YAML aliases (*name) would expand to more than {limit} values "
        "(line {line}); write the entries out instead"
    ),
    "not_a_mapping": N_("expected fields written as 'key: value', found '{value}'"),
    "not_a_list": N_("expected a list of entries, each starting with '- ', found '{value}'"),
    "unknown_section": N_("unknown section '{value}' (allowed: {allowed})"),
    "missing": N_("this field is required and must not be empty"),
    "unknown_field": N_("unknown field (allowed: {allowed})"),
    "wrong_type": N_(
        "expected text, found '{value}' (text that looks like a number or yes/no needs quotes)"
    ),
    "not_a_boolean": N_("'{value}' is neither true nor false"),
    "control_character": N_(
        "the text contains the control character {character} at position {position}"
    ),
    "not_a_date": N_("'{value}' is not a date (YYYY-MM-DD)"),
    "not_a_datetime": N_(
        "'{value}' is not a date and time (YYYY-MM-DD HH:MM in the network's "
        "time zone, or ISO 8601 with an offset such as 2023-03-29T14:00+02:00)"
    ),
    "date_out_of_range": N_("'{value}' is not between the years {earliest} and {latest}"),
    "no_such_time": N_("'{value}' does not exist in the time zone {timezone} (clocks skip it)"),
    "not_a_number": N_("'{value}' is not a number"),
    "negative": N_("'{value}' is negative; it must be 0 or more"),
    "too_large": N_("'{value}' is more than {limit}"),
    "unknown_category": N_("unknown category '{value}' (allowed: {allowed})"),
    "unknown_partner": N_("the partner '{value}' is neither in this file nor stored"),
    "duplicate": N_("the same entry as {other}; each entry may appear only once"),
    "other_key": N_(
        "the stored entry of this name or title carries the key '{other}'; "
        "give this entry that key or another name or title"
    ),
    "taken": N_("another stored entry already has this {field}; it cannot be there twice"),
    "too_long": N_("the text has {length} characters; at most {limit} are allowed"),
    "bad_url": N_("'{value}' is not a web address starting with http:// or https://"),
    "no_place": N_("a meeting needs a location, an online_url or both"),
    "ends_before_start": N_("it ends ({ends}) before or when it starts ({starts})"),
    "not_a_capacity": N_("'{value}' is not a number of places (a whole number from 1 to {limit})"),
    "bad_rule": N_(
        "'{value}' is not a recurrence rule this bot can use ({reason}); write an RRULE "
        "value such as FREQ=MONTHLY;INTERVAL=3;BYDAY=+2WE"
    ),
    "not_an_occurrence": N_("'{value}' is not a start the series' rule gives"),
    "invalid": N_("'{value}' is not allowed here"),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an import file."""

    entry: str
    field: str | None
    code: str
    detail: dict[str, str]

    def message(self, template: str | None = None) -> str:
        """Say where the problem is and what it is, with a (translated) template."""
        text = (template or PROBLEM_MESSAGES[self.code]).format(**self.detail)
        where = self.entry if self.field is None else f"{self.entry}, {self.field}"
        return f"{where}: {text}"


class ImportFileError(Exception):
    """The import file has problems; nothing of it was imported."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems[:MAX_PROBLEMS])
        self.omitted = max(0, len(problems) - MAX_PROBLEMS)
        count = len(problems)
        first = self.problems[0].message() if self.problems else "unknown"
        super().__init__(f"{count} problem(s) in the import file; the first: {first}")


def file_problem(code: str, **detail: str) -> ImportFileError:
    """Return the error for a problem of the file as a whole."""
    return ImportFileError([Problem("file", None, code, detail)])
