"""The entries of an import file as pydantic models, with every problem in the file's words."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from storage.exchange import values
from storage.exchange.problems import PROBLEM_MESSAGES, ImportFileError, Problem, file_problem
from storage.exchange.values import column_limit
from storage.exchange.yamlfile import load_yaml
from storage.models import Category, Meeting, MeetingSeries, Partner, Tip, fold_name
from storage.series import RuleError, clean_rule, occurs, recurrence

SECTIONS = ("partners", "meetings", "tips", "series")
Key = Annotated[str, values.text(column_limit(Partner, "import_key"))]
PartnerName = Annotated[str, values.text(column_limit(Partner, "name"))]
Title = Annotated[str, values.text(column_limit(Meeting, "title"))]
LongText = Annotated[str, values.text(long=True)]


def _again(error: ErrorDetails) -> InitErrorDetails:
    """Carry a field's error over into the entry's error, keeping its type and details."""
    kind = PydanticCustomError(error["type"], error["type"], error.get("ctx") or {})
    return InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])


class _Entry(BaseModel):
    """An entry of the file; blank fields count as absent."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # The field that names the entry in messages.
    label_field: ClassVar[str]
    # Fields that hold a list of entries of their own, by the model of those entries.
    nested: ClassVar[dict[str, type[_Entry]]] = {}

    @model_validator(mode="wrap")
    @classmethod
    def _read(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if isinstance(data, dict):
            data = {
                name: value
                for name, value in data.items()
                if name not in cls.model_fields
                or not (value is None or (isinstance(value, str) and not value.strip()))
            }
        errors: list[InitErrorDetails] = []
        entry = None
        try:
            entry = handler(data)
        except ValidationError as error:
            errors = [_again(e) for e in error.errors()]
        # Rules about the entry as a whole, reported beside those about its fields.
        if isinstance(data, dict) and (code := cls._whole_entry_problem(data)):
            errors.append(InitErrorDetails(type=values.fail(code), loc=(), input=data))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return entry

    @classmethod
    def _whole_entry_problem(cls, _data: dict[Any, Any]) -> str | None:
        return None


def _ends_after(
    ends: dt.datetime | None, starts: dt.datetime | None, info: ValidationInfo
) -> dt.datetime | None:
    """Refuse an end before or at the start."""
    if ends is not None and starts is not None and ends <= starts:
        timezone: dt.tzinfo = (info.context or {}).get("timezone", dt.UTC)
        raise values.fail(
            "ends_before_start",
            ends=values.local_text(ends, timezone),
            starts=values.local_text(starts, timezone),
        )
    return ends


class PartnerData(_Entry):
    """A partner as the import file describes it."""

    label_field: ClassVar[str] = "name"

    name: PartnerName
    sector: Annotated[str, values.text(column_limit(Partner, "sector"))] = ""
    joined: Annotated[dt.date, PlainValidator(values.date)]
    website: Annotated[str, values.url(column_limit(Partner, "website"))] | None = None
    description: LongText | None = None
    key: Key | None = None


class MeetingData(_Entry):
    """A meeting as the import file describes it; times are UTC."""

    label_field: ClassVar[str] = "title"

    title: Title
    starts: Annotated[dt.datetime, PlainValidator(values.moment)]
    ends: Annotated[dt.datetime, PlainValidator(values.moment)] | None = None
    location: Annotated[str, values.text(column_limit(Meeting, "location"))] | None = None
    online_url: Annotated[str, values.url(column_limit(Meeting, "online_url"))] | None = None
    agenda: LongText | None = None
    capacity: Annotated[int, PlainValidator(values.capacity)] | None = None
    cancelled: Annotated[bool, PlainValidator(values.flag)] = False
    key: Key | None = None

    @field_validator("ends")
    @classmethod
    def _after_start(cls, ends: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return _ends_after(ends, info.data.get("starts"), info)

    @classmethod
    def _whole_entry_problem(cls, data: dict[Any, Any]) -> str | None:
        return None if {"location", "online_url"} & set(data) else "no_place"


Moment = Annotated[dt.datetime, PlainValidator(values.moment)]


class ExceptionData(_Entry):
    """One occurrence of a series that differs from the rule: moved, changed or cancelled."""

    label_field: ClassVar[str] = "occurrence"

    # The start the rule gives it (RFC 5545 RECURRENCE-ID), whatever it was moved to.
    occurrence: Moment
    starts: Moment | None = None
    ends: Moment | None = None
    title: Title | None = None
    location: Annotated[str, values.text(column_limit(Meeting, "location"))] | None = None
    online_url: Annotated[str, values.url(column_limit(Meeting, "online_url"))] | None = None
    agenda: LongText | None = None
    capacity: Annotated[int, PlainValidator(values.capacity)] | None = None
    cancelled: Annotated[bool, PlainValidator(values.flag)] = False

    @field_validator("ends")
    @classmethod
    def _after_start(cls, ends: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return _ends_after(ends, info.data.get("starts") or info.data.get("occurrence"), info)


class SeriesData(_Entry):
    """Meetings that repeat by an RFC 5545 rule, read in network-local time; times are UTC."""

    label_field: ClassVar[str] = "title"
    nested: ClassVar[dict[str, type[_Entry]]] = {"exceptions": ExceptionData}

    title: Title
    # The first occurrence; its wall-clock time is every occurrence's.
    starts: Moment
    ends: Moment | None = None
    rule: Annotated[str, values.text(column_limit(MeetingSeries, "rule"))]
    location: Annotated[str, values.text(column_limit(Meeting, "location"))] | None = None
    online_url: Annotated[str, values.url(column_limit(Meeting, "online_url"))] | None = None
    agenda: LongText | None = None
    capacity: Annotated[int, PlainValidator(values.capacity)] | None = None
    exceptions: tuple[ExceptionData, ...] = ()
    key: Key | None = None

    @field_validator("ends")
    @classmethod
    def _after_start(cls, ends: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        return _ends_after(ends, info.data.get("starts"), info)

    @field_validator("rule")
    @classmethod
    def _usable(cls, rule: str, info: ValidationInfo) -> str:
        timezone: dt.tzinfo = (info.context or {}).get("timezone", dt.UTC)
        starts = info.data.get("starts") or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        try:
            recurrence(rule, starts, timezone)
        except RuleError as error:
            raise values.fail("bad_rule", value=values.show(rule), reason=str(error)) from None
        return clean_rule(rule)

    @classmethod
    def _whole_entry_problem(cls, data: dict[Any, Any]) -> str | None:
        return None if {"location", "online_url"} & set(data) else "no_place"


class TipData(_Entry):
    """A tip as the import file describes it, naming its partner."""

    label_field: ClassVar[str] = "title"

    title: Annotated[str, values.text(column_limit(Tip, "title"))]
    partner: PartnerName
    category: Annotated[Category, PlainValidator(values.category)]
    text: LongText
    co2_t_per_year: Annotated[float, PlainValidator(values.number)] | None = None
    key: Key | None = None


class NetworkData(BaseModel):
    """Everything an import file holds, validated."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    partners: tuple[PartnerData, ...] = ()
    meetings: tuple[MeetingData, ...] = ()
    tips: tuple[TipData, ...] = ()
    series: tuple[SeriesData, ...] = ()
    # The time zone the file's wall-clock times were read in; series rules are evaluated in it.
    timezone: dt.tzinfo = dt.UTC


class _Sections(BaseModel):
    """The file's outline: known sections, each a list of entries (read one by one later)."""

    model_config = ConfigDict(extra="forbid")

    partners: list[Any] | None = None
    meetings: list[Any] | None = None
    tips: list[Any] | None = None
    series: list[Any] | None = None


ENTRY_MODELS: dict[str, type[_Entry]] = {
    "partners": PartnerData,
    "meetings": MeetingData,
    "tips": TipData,
    "series": SeriesData,
}


def label(section: str, index: int, name: object) -> str:
    """Name an entry by its 1-based position and, if readable, its name or title."""
    text = f"{section}[{index}]"
    if isinstance(name, str) and name.strip():
        text += f" ({values.show(name.strip())})"
    return text


def _problem(where: str, error: ErrorDetails, model: type[BaseModel]) -> Problem:
    """Say a pydantic error in the project's words: pydantic's own never reach the operator."""
    kind = error["type"]
    loc = error["loc"]
    field = _field_name(loc) if loc else None
    detail = {name: str(value) for name, value in (error.get("ctx") or {}).items()}
    value = values.show(str(loc[-1]) if kind == "extra_forbidden" else error["input"])
    if len(loc) > 2 and isinstance(model, type) and issubclass(model, _Entry):
        model = model.nested.get(str(loc[0]), model)
    allowed = ", ".join(model.model_fields)
    if kind == "extra_forbidden" and model is _Sections:
        return Problem("file", None, "unknown_section", {"value": value, "allowed": allowed})
    codes = {
        "extra_forbidden": ("unknown_field", {"allowed": allowed}),
        "invalid_key": ("unknown_field", {"allowed": allowed}),
        "missing": ("missing", {}),
        "model_type": ("not_a_mapping", {"value": value}),
        "dict_type": ("not_a_mapping", {"value": value}),
        "list_type": ("not_a_list", {"value": value}),
        "tuple_type": ("not_a_list", {"value": value}),
    }
    if kind in codes:
        code, detail = codes[kind]
        return Problem(where, field if model is not _Sections else None, code, detail)
    if kind in PROBLEM_MESSAGES:
        return Problem(where, field, kind, detail)
    return Problem(where, field, "invalid", {"value": value})


def exception_problems(series: SeriesData, where: str, timezone: dt.tzinfo) -> list[Problem]:
    """Report exceptions that name no occurrence of the series' rule, or one named twice."""
    problems = []
    first: dict[dt.datetime, str] = {}
    for index, exception in enumerate(series.exceptions, start=1):
        moment, field = exception.occurrence, f"exceptions[{index}].occurrence"
        shown = {"value": values.local_text(moment, timezone)}
        if moment in first:
            problems.append(Problem(where, field, "duplicate", {"other": first[moment]}))
        elif not occurs(series.rule, series.starts, moment, timezone):
            problems.append(Problem(where, field, "not_an_occurrence", shown))
        first.setdefault(moment, f"exceptions[{index}]")
    return problems


def _field_name(loc: tuple[int | str, ...]) -> str:
    """Name a field as the file writes it: ``exceptions[2].starts`` (1-based, like entries)."""
    text = ""
    for part in loc:
        text += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def duplicates(entries: Iterable[tuple[str, Hashable, str]]) -> list[Problem]:
    """Report each entry whose key an earlier entry has already, naming both."""
    first: dict[Hashable, str] = {}
    problems = []
    for where, key, field in entries:
        if key in first:
            problems.append(Problem(where, field, "duplicate", {"other": first[key]}))
        else:
            first[key] = where
    return problems


def file_duplicates(data: NetworkData, labels: dict[str, list[str]]) -> list[Problem]:
    """Report entries given twice in a file, by their stable key or their natural one."""
    keyed: list[tuple[str, Hashable, str]] = []
    natural: list[tuple[str, Hashable, str]] = []
    for section in SECTIONS:
        for where, entry in zip(labels[section], getattr(data, section), strict=True):
            if entry.key is not None:
                keyed.append((where, (section, entry.key), "key"))
    natural += [
        (w, fold_name(p.name), "name")
        for w, p in zip(labels["partners"], data.partners, strict=True)
    ]
    natural += [
        (w, (m.title, m.starts), "title")
        for w, m in zip(labels["meetings"], data.meetings, strict=True)
    ]
    natural += [
        (w, (fold_name(t.partner), t.title), "title")
        for w, t in zip(labels["tips"], data.tips, strict=True)
    ]
    natural += [
        (w, ("series", s.title, s.starts), "title")
        for w, s in zip(labels["series"], data.series, strict=True)
    ]
    return duplicates(natural) + duplicates(keyed)


def parse_import(text: str, timezone: dt.tzinfo) -> NetworkData:
    """Validate an import file and return its entries, or raise ImportFileError."""
    document = load_yaml(text)
    if document is None:
        return NetworkData(timezone=timezone)
    if not isinstance(document, dict):
        raise file_problem("not_a_mapping", value=values.show(document))
    try:
        sections = _Sections.model_validate(document)
    except ValidationError as error:
        raise ImportFileError(
            [_problem(str(e["loc"][0]), e, _Sections) for e in error.errors()]
        ) from None
    problems: list[Problem] = []
    good: dict[str, list[Any]] = {}
    labels: dict[str, list[str]] = {}
    context = {"timezone": timezone}
    for section, model in ENTRY_MODELS.items():
        good[section], labels[section] = [], []
        for index, raw in enumerate(getattr(sections, section) or (), start=1):
            name = raw.get(model.label_field) if isinstance(raw, dict) else None
            where = label(section, index, name)
            try:
                entry = model.model_validate(raw, context=context)
                if isinstance(entry, SeriesData):
                    problems += exception_problems(entry, where, timezone)
                good[section].append(entry)
                labels[section].append(where)
            except ValidationError as error:
                found = [_problem(where, e, model) for e in error.errors()]
                # Unknown fields first: they often explain the problems that follow.
                problems += sorted(found, key=lambda p: p.code != "unknown_field")
    sections_read = {section: tuple(good[section]) for section in SECTIONS}
    data = NetworkData(**sections_read, timezone=timezone)
    problems += file_duplicates(data, labels)
    if problems:
        raise ImportFileError(problems)
    return data
