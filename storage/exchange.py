"""The import and export file: partners, meetings and tips as YAML."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Category, Meeting, Partner, Tip

T = TypeVar("T")

MAX_PROBLEMS = 50

SECTIONS = ("partners", "meetings", "tips")
PARTNER_FIELDS = ("name", "sector", "joined", "website", "description")
MEETING_FIELDS = ("title", "starts", "ends", "location", "online_url", "agenda")
TIP_FIELDS = ("title", "partner", "category", "text", "co2_t_per_year")
CATEGORIES = tuple(category.value for category in Category)
# Each section's fields and the field that names an entry in messages.
SECTION_FIELDS = {
    "partners": (PARTNER_FIELDS, "name"),
    "meetings": (MEETING_FIELDS, "title"),
    "tips": (TIP_FIELDS, "title"),
}

# The model's column sizes; longer text would fail only when the database writes it.
NAME_LIMIT = 200
TITLE_LIMIT = 200
LOCATION_LIMIT = 300
URL_LIMIT = 500


def N_(message: str) -> str:
    """Mark a message for translation; the bot translates it where it is shown."""
    return message


# English templates; the bot translates them, so each is marked for extraction.
PROBLEM_MESSAGES: dict[str, str] = {
    "yaml_syntax": N_("the file is not valid YAML (line {line}): {reason}"),
    "duplicate_key": N_("'{key}:' is written twice in the same block (line {line})"),
    "not_a_mapping": N_("expected fields written as 'key: value', found '{value}'"),
    "not_a_list": N_("expected a list of entries, each starting with '- ', found '{value}'"),
    "unknown_section": N_("unknown section '{value}' (allowed: {allowed})"),
    "missing": N_("this field is required and must not be empty"),
    "unknown_field": N_("unknown field (allowed: {allowed})"),
    "wrong_type": N_(
        "expected text, found '{value}' (text that looks like a number or yes/no needs quotes)"
    ),
    "not_a_date": N_("'{value}' is not a date (YYYY-MM-DD)"),
    "not_a_datetime": N_(
        "'{value}' is not a date and time (YYYY-MM-DD HH:MM in the network's "
        "time zone, or ISO 8601 with an offset such as 2023-03-29T14:00+02:00)"
    ),
    "no_such_time": N_("'{value}' does not exist in the time zone {timezone} (clocks skip it)"),
    "not_a_number": N_("'{value}' is not a number"),
    "negative": N_("'{value}' is negative; it must be 0 or more"),
    "unknown_category": N_("unknown category '{value}' (allowed: {allowed})"),
    "unknown_partner": N_("the partner '{value}' is neither in this file nor stored"),
    "duplicate": N_("the same entry as {other}; each entry may appear only once"),
    "too_long": N_("the text has {length} characters; at most {limit} are allowed"),
    "bad_url": N_("'{value}' is not a web address starting with http:// or https://"),
    "no_place": N_("a meeting needs a location, an online_url or both"),
    "ends_before_start": N_("it ends ({ends}) before or when it starts ({starts})"),
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


@dataclass(frozen=True)
class PartnerData:
    """A partner as the import file describes it."""

    name: str
    joined: dt.date
    sector: str = ""
    website: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class MeetingData:
    """A meeting as the import file describes it; times are UTC."""

    title: str
    starts: dt.datetime
    ends: dt.datetime | None = None
    location: str | None = None
    online_url: str | None = None
    agenda: str | None = None


@dataclass(frozen=True)
class TipData:
    """A tip as the import file describes it, naming its partner."""

    title: str
    partner: str
    category: Category
    text: str
    co2_t_per_year: float | None = None


@dataclass(frozen=True)
class NetworkData:
    """Everything an import file holds, validated."""

    partners: tuple[PartnerData, ...] = ()
    meetings: tuple[MeetingData, ...] = ()
    tips: tuple[TipData, ...] = ()


@dataclass(frozen=True)
class Counts:
    """How many entries of one kind an import created, updated or left as they were."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, per kind of entry."""

    partners: Counts
    meetings: Counts
    tips: Counts

    @property
    def changed(self) -> bool:
        """Tell whether the import wrote anything."""
        return any(c.created or c.updated for c in (self.partners, self.meetings, self.tips))


# --- reading -------------------------------------------------------------------------------

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.SafeLoader):
    """A safe loader that leaves dates as text and notes keys given twice in one mapping."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.twice: list[tuple[str, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[str] = set()
        for key_node, _value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                if key_node.value in seen:
                    self.twice.append((key_node.value, key_node.start_mark.line + 1))
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 turns 2022-13-01 into a crash and "2023-03-29 14:00:00" into a naive datetime;
# reading dates as text lets every date go through one parser with one kind of error.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?"
)


class _Invalid(Exception):
    """A value cannot be used; code and detail become a Problem."""

    def __init__(self, code: str, **detail: str) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def _show(value: object) -> str:
    """Render a value from the file for a message, briefly."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _clean_line(value: str) -> str:
    return value.strip()


def _clean_long(value: str) -> str:
    # Trailing spaces would force YAML's quoted style on export; they never mean anything.
    lines = value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _parse_date(value: object) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _Invalid("not_a_date", value=_show(value))


def _parse_moment(value: object, timezone: ZoneInfo) -> dt.datetime:
    moment: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and _DATETIME.fullmatch(value.strip()):
        try:
            moment = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise _Invalid("not_a_datetime", value=_show(value))
    if moment.tzinfo is not None:
        return moment.astimezone(dt.UTC)
    local = moment.replace(tzinfo=timezone)
    # A wall-clock time inside the spring-forward gap comes back as another time.
    if local.astimezone(dt.UTC).astimezone(timezone).replace(tzinfo=None) != moment:
        raise _Invalid("no_such_time", value=_show(value), timezone=str(timezone))
    return local.astimezone(dt.UTC)


def _parse_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("not_a_number", value=_show(value))
    number = float(value)
    if not math.isfinite(number):
        raise _Invalid("not_a_number", value=_show(value))
    if number < 0:
        raise _Invalid("negative", value=_show(value))
    return number


def _parse_category(value: object) -> Category:
    if isinstance(value, str) and value in CATEGORIES:
        return Category(value)
    raise _Invalid("unknown_category", value=_show(value), allowed=", ".join(CATEGORIES))


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", value):
        raise _Invalid("bad_url", value=_show(value))
    return value


class _Reader:
    """Read one entry's fields, noting every problem instead of stopping at the first."""

    def __init__(
        self,
        entry: str,
        raw: Mapping[object, object],
        allowed: tuple[str, ...],
        problems: list[Problem],
    ) -> None:
        self.entry = entry
        self.failed: set[str | None] = set()
        self._raw = raw
        self._problems = problems
        for key in raw:
            if key not in allowed:
                self.fail(str(key), "unknown_field", allowed=", ".join(allowed))

    def fail(self, name: str | None, code: str, **detail: str) -> None:
        """Note a problem with one field (or with the entry, for name None)."""
        self.failed.add(name)
        self._problems.append(Problem(self.entry, name, code, detail))

    def _get(self, name: str, *, required: bool) -> object:
        value = self._raw.get(name)
        if isinstance(value, str) and not value.strip():
            value = None
        if value is None and required:
            self.fail(name, "missing")
        return value

    def _parse(self, name: str, value: object, parse: Callable[[Any], T]) -> T | None:
        try:
            return parse(value)
        except _Invalid as invalid:
            self.fail(name, invalid.code, **invalid.detail)
            return None

    def maybe_text(
        self, name: str, *, limit: int | None = None, long: bool = False, required: bool = False
    ) -> str | None:
        """Return a text field, or None when it is absent or wrong."""
        value = self._get(name, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(name, "wrong_type", value=_show(value))
            return None
        text = _clean_long(value) if long else _clean_line(value)
        if limit is not None and len(text) > limit:
            self.fail(name, "too_long", length=str(len(text)), limit=str(limit))
            return None
        return text

    def text(self, name: str, *, limit: int | None = None, long: bool = False) -> str:
        """Return a required text field ("" when it is wrong, which fails the entry)."""
        return self.maybe_text(name, limit=limit, long=long, required=True) or ""

    def maybe_url(self, name: str) -> str | None:
        """Return an optional http(s) address."""
        text = self.maybe_text(name, limit=URL_LIMIT)
        return None if text is None else self._parse(name, text, _check_url)

    def date(self, name: str) -> dt.date:
        """Return a required date."""
        value = self._get(name, required=True)
        if value is None:
            return dt.date.min
        return self._parse(name, value, _parse_date) or dt.date.min

    def maybe_moment(
        self, name: str, timezone: ZoneInfo, *, required: bool = False
    ) -> dt.datetime | None:
        """Return a date and time as UTC, reading naive times in the network's time zone."""
        value = self._get(name, required=required)
        if value is None:
            return None
        return self._parse(name, value, lambda raw: _parse_moment(raw, timezone))

    def maybe_number(self, name: str) -> float | None:
        """Return an optional non-negative number."""
        value = self._get(name, required=False)
        return None if value is None else self._parse(name, value, _parse_number)

    def category(self, name: str) -> Category:
        """Return a required category."""
        value = self._get(name, required=True)
        if value is None:
            return Category.OTHER
        return self._parse(name, value, _parse_category) or Category.OTHER


def _label(section: str, index: int, raw: object, key: str) -> str:
    """Name an entry by its 1-based position and, if readable, its name or title."""
    label = f"{section}[{index}]"
    if isinstance(raw, Mapping):
        name = raw.get(key)
        if isinstance(name, str) and name.strip():
            shown = _show(name.strip())
            label += f" ({shown})"
    return label


def _read_partner(reader: _Reader, _timezone: ZoneInfo) -> PartnerData:
    return PartnerData(
        name=reader.text("name", limit=NAME_LIMIT),
        sector=reader.maybe_text("sector", limit=NAME_LIMIT) or "",
        joined=reader.date("joined"),
        website=reader.maybe_url("website"),
        description=reader.maybe_text("description", long=True),
    )


def _read_meeting(reader: _Reader, timezone: ZoneInfo) -> MeetingData:
    title = reader.text("title", limit=TITLE_LIMIT)
    starts = reader.maybe_moment("starts", timezone, required=True)
    ends = reader.maybe_moment("ends", timezone)
    location = reader.maybe_text("location", limit=LOCATION_LIMIT)
    online_url = reader.maybe_url("online_url")
    agenda = reader.maybe_text("agenda", long=True)
    if location is None and online_url is None and not {"location", "online_url"} & reader.failed:
        reader.fail(None, "no_place")
    if starts is not None and ends is not None and ends <= starts:
        reader.fail(
            "ends",
            "ends_before_start",
            ends=_local_text(ends, timezone),
            starts=_local_text(starts, timezone),
        )
    return MeetingData(
        title=title,
        starts=starts or dt.datetime.min.replace(tzinfo=dt.UTC),
        ends=ends,
        location=location,
        online_url=online_url,
        agenda=agenda,
    )


def _read_tip(reader: _Reader, _timezone: ZoneInfo) -> TipData:
    return TipData(
        title=reader.text("title", limit=TITLE_LIMIT),
        partner=reader.text("partner", limit=NAME_LIMIT),
        category=reader.category("category"),
        text=reader.text("text", long=True),
        co2_t_per_year=reader.maybe_number("co2_t_per_year"),
    )


def _load(text: str) -> object:
    """Load YAML text, turning syntax errors and doubled keys into problems."""
    loader = _Loader(text)
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = str(mark.line + 1) if mark is not None else "?"
        reason = error.problem or error.context or "unreadable"
        raise ImportFileError(
            [Problem("file", None, "yaml_syntax", {"line": line, "reason": reason})]
        ) from None
    except yaml.YAMLError as error:
        raise ImportFileError(
            [Problem("file", None, "yaml_syntax", {"line": "?", "reason": str(error)})]
        ) from None
    finally:
        loader.dispose()
    if loader.twice:
        raise ImportFileError(
            [
                Problem("file", None, "duplicate_key", {"key": key, "line": str(line)})
                for key, line in loader.twice
            ]
        )
    return document


def _duplicates(entries: Iterable[tuple[str, Hashable, str]]) -> list[Problem]:
    """Report each entry whose key an earlier entry has already, naming both."""
    first: dict[Hashable, str] = {}
    problems = []
    for label, key, key_field in entries:
        if key in first:
            problems.append(Problem(label, key_field, "duplicate", {"other": first[key]}))
        else:
            first[key] = label
    return problems


def _read_section(
    section: str,
    items: object,
    read: Callable[[_Reader, ZoneInfo], T],
    timezone: ZoneInfo,
    problems: list[Problem],
) -> list[tuple[str, T]]:
    """Read one section's entries; return the good ones with their labels."""
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(Problem(section, None, "not_a_list", {"value": _show(items)}))
        return []
    fields, key = SECTION_FIELDS[section]
    good = []
    for index, raw in enumerate(items, start=1):
        label = _label(section, index, raw, key)
        if not isinstance(raw, dict):
            problems.append(Problem(label, None, "not_a_mapping", {"value": _show(raw)}))
            continue
        reader = _Reader(label, raw, fields, problems)
        entry = read(reader, timezone)
        # The reader hands back placeholders for what was wrong, so only clean entries count.
        if not reader.failed:
            good.append((label, entry))
    return good


def parse_import(text: str, timezone: ZoneInfo) -> NetworkData:
    """Validate an import file and return its entries, or raise ImportFileError."""
    document = _load(text)
    if document is None:
        return NetworkData()
    if not isinstance(document, dict):
        raise ImportFileError([Problem("file", None, "not_a_mapping", {"value": _show(document)})])
    problems: list[Problem] = [
        Problem(
            "file", None, "unknown_section", {"value": str(key), "allowed": ", ".join(SECTIONS)}
        )
        for key in document
        if key not in SECTIONS
    ]
    partners = _read_section(
        "partners", document.get("partners"), _read_partner, timezone, problems
    )
    meetings = _read_section(
        "meetings", document.get("meetings"), _read_meeting, timezone, problems
    )
    tips = _read_section("tips", document.get("tips"), _read_tip, timezone, problems)
    problems += _duplicates((label, p.name, "name") for label, p in partners)
    problems += _duplicates((label, (m.title, m.starts), "title") for label, m in meetings)
    problems += _duplicates((label, (t.partner, t.title), "title") for label, t in tips)
    if problems:
        raise ImportFileError(problems)
    return NetworkData(
        partners=tuple(p for _label, p in partners),
        meetings=tuple(m for _label, m in meetings),
        tips=tuple(t for _label, t in tips),
    )


# --- writing to the database --------------------------------------------------------------


def _update(row: object, values: Mapping[str, object]) -> bool:
    """Set the values that differ; tell whether any did."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


class _Tally:
    """Count what an upsert did to one kind of entry."""

    def __init__(self) -> None:
        self.created = self.updated = self.unchanged = 0

    def note(self, row: object | None, values: Mapping[str, object]) -> None:
        """Count a new entry (row None), or update a stored row and count whether it changed."""
        if row is None:
            self.created += 1
        elif _update(row, values):
            self.updated += 1
        else:
            self.unchanged += 1

    def counts(self) -> Counts:
        """Return the counts so far."""
        return Counts(self.created, self.updated, self.unchanged)


def _check_before_writing(data: NetworkData, stored_partners: set[str]) -> None:
    """Refuse data with duplicate keys or tips of unknown partners, before anything changes."""
    problems = _duplicates(
        (f"partners[{i}] ({p.name})", p.name, "name") for i, p in enumerate(data.partners, 1)
    )
    problems += _duplicates(
        (f"meetings[{i}] ({m.title})", (m.title, m.starts), "title")
        for i, m in enumerate(data.meetings, 1)
    )
    problems += _duplicates(
        (f"tips[{i}] ({t.title})", (t.partner, t.title), "title")
        for i, t in enumerate(data.tips, 1)
    )
    known = stored_partners | {partner.name for partner in data.partners}
    problems += [
        Problem(f"tips[{i}] ({tip.title})", "partner", "unknown_partner", {"value": tip.partner})
        for i, tip in enumerate(data.tips, 1)
        if tip.partner not in known
    ]
    if problems:
        raise ImportFileError(problems)


async def import_data(session: AsyncSession, data: NetworkData) -> ImportSummary:
    """Create or update the entries by their keys; the caller commits (or rolls back)."""
    partners = {row.name: row for row in await session.scalars(select(Partner))}
    _check_before_writing(data, set(partners))

    partner_tally = _Tally()
    for item in data.partners:
        values: dict[str, object] = {
            "sector": item.sector,
            "joined": item.joined,
            "website": item.website,
            "description": item.description,
        }
        row = partners.get(item.name)
        partner_tally.note(row, values)
        if row is None:
            partners[item.name] = Partner(name=item.name, **values)
            session.add(partners[item.name])
    # New partners need their ids before their tips can point at them.
    await session.flush()

    meetings = {(row.title, row.starts_at): row for row in await session.scalars(select(Meeting))}
    meeting_tally = _Tally()
    for meeting in data.meetings:
        values = {
            "ends_at": meeting.ends,
            "location": meeting.location,
            "online_url": meeting.online_url,
            "agenda": meeting.agenda,
        }
        found = meetings.get((meeting.title, meeting.starts))
        meeting_tally.note(found, values)
        if found is None:
            session.add(Meeting(title=meeting.title, starts_at=meeting.starts, **values))

    result = await session.execute(select(Tip, Partner.name).join(Partner))
    tips = {(name, tip.title): tip for tip, name in result}
    tip_tally = _Tally()
    for item_tip in data.tips:
        values = {
            "category": item_tip.category,
            "text": item_tip.text,
            "co2_t_per_year": item_tip.co2_t_per_year,
        }
        stored = tips.get((item_tip.partner, item_tip.title))
        tip_tally.note(stored, values)
        if stored is None:
            partner_id = partners[item_tip.partner].id
            session.add(Tip(partner_id=partner_id, title=item_tip.title, **values))
    await session.flush()
    return ImportSummary(partner_tally.counts(), meeting_tally.counts(), tip_tally.counts())


# --- exporting -----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """A dumper that indents lists under their key and writes multi-line text as blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, indentless=False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _local_text(moment: dt.datetime, timezone: ZoneInfo) -> str:
    """Write a moment as network-local wall-clock time, with its offset only if ambiguous."""
    local = moment.astimezone(timezone)
    timespec = "auto" if local.second or local.microsecond else "minutes"
    wall_clock = local.replace(tzinfo=None)
    # The hour when the clocks fall back happens twice; the offset says which one is meant.
    if wall_clock.replace(tzinfo=timezone) != moment:
        return local.isoformat(timespec=timespec)
    return wall_clock.isoformat(sep=" ", timespec=timespec)


def _entry(**values: object) -> dict[str, object]:
    """Build one entry, leaving out optional fields that are empty."""
    return {name: value for name, value in values.items() if value not in (None, "")}


def _optional_long(value: str | None) -> str | None:
    return None if value is None else _clean_long(value)


async def export_data(session: AsyncSession, timezone: ZoneInfo) -> str:
    """Write partners, meetings and visible tips in the import format."""
    partners = sorted(await session.scalars(select(Partner)), key=lambda p: p.name.strip())
    meetings = sorted(
        await session.scalars(select(Meeting).where(Meeting.cancelled_at.is_(None))),
        key=lambda m: (m.starts_at, m.title.strip()),
    )
    result = await session.execute(
        select(Tip, Partner.name).join(Partner).where(Tip.hidden_at.is_(None))
    )
    tips = sorted(result, key=lambda row: (row[1].strip(), row[0].title.strip()))
    document: dict[str, list[dict[str, object]]] = {
        "partners": [
            _entry(
                name=_clean_line(p.name),
                sector=_clean_line(p.sector),
                joined=p.joined,
                website=p.website and _clean_line(p.website),
                description=_optional_long(p.description),
            )
            for p in partners
        ],
        "meetings": [
            _entry(
                title=_clean_line(m.title),
                starts=_local_text(m.starts_at, timezone),
                ends=m.ends_at and _local_text(m.ends_at, timezone),
                location=m.location and _clean_line(m.location),
                online_url=m.online_url and _clean_line(m.online_url),
                agenda=_optional_long(m.agenda),
            )
            for m in meetings
        ],
        "tips": [
            _entry(
                title=_clean_line(tip.title),
                partner=_clean_line(name),
                category=tip.category.value,
                text=_clean_long(tip.text),
                co2_t_per_year=tip.co2_t_per_year,
            )
            for tip, name in tips
        ],
    }
    # One dump per section, so a blank line can separate them for the reader.
    return "\n".join(
        yaml.dump(
            {section: entries},
            Dumper=_Dumper,
            allow_unicode=True,
            sort_keys=False,
            width=88,
        )
        for section, entries in document.items()
    )
