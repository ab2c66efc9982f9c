"""Planning an import: what is stored, which entry is which stored row, what to write."""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.exchange.entries import NetworkData, duplicates, label
from storage.exchange.problems import ImportFileError, Problem
from storage.models import Base, Meeting, MeetingSeries, Partner, Tip, fold_name, utcnow

Values = dict[str, Any]


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
    series: Counts = Counts()

    @property
    def changed(self) -> bool:
        """Tell whether the import wrote anything."""
        kinds = (self.partners, self.meetings, self.tips, self.series)
        return any(c.created or c.updated for c in kinds)


@dataclass(frozen=True)
class _Kind:
    """One kind of entry: its section and table, which field is which column, its natural key."""

    section: str
    model: type[Base]
    fields: dict[str, str]
    natural: tuple[str, ...]
    named: str  # the field that messages about the natural key name
    parked: tuple[str, ...]  # unique text columns that make way while entries trade names
    # Which stored rows the file's entries of this kind stand for (by default all).
    stored: ColumnElement[bool] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Return the columns an import compares and writes."""
        written = tuple(self.fields.values())
        return written + tuple(column for column in self.natural if column not in written)

    def natural_key(self, values: Values) -> Hashable:
        """Return the key of an entry that carries no key of its own."""
        return tuple(values[column] for column in self.natural)


KINDS = (
    _Kind(
        "partners",
        Partner,
        {"key": "import_key", "name": "name", "sector": "sector", "joined": "joined"}
        | {"website": "website", "description": "description"},
        ("name_folded",),
        "name",
        ("name", "name_folded"),
    ),
    _Kind(
        "meetings",
        Meeting,
        {"key": "import_key", "title": "title", "starts": "starts_at", "ends": "ends_at"}
        | {"location": "location", "online_url": "online_url", "agenda": "agenda"}
        | {"capacity": "capacity", "cancelled": "cancelled_at"},
        ("title", "starts_at"),
        "title",
        ("title",),
        # Occurrences of a series are written in its entry, not as meetings of their own.
        Meeting.series_id.is_(None),
    ),
    _Kind(
        "tips",
        Tip,
        {"key": "import_key", "title": "title", "partner": "partner_id", "category": "category"}
        | {"text": "text", "co2_t_per_year": "co2_t_per_year"},
        ("partner_id", "title"),
        "title",
        ("title",),
    ),
    _Kind(
        "series",
        MeetingSeries,
        {"key": "import_key", "title": "title", "starts": "starts_at", "ends": "ends_at"}
        | {"rule": "rule", "location": "location", "online_url": "online_url"}
        | {"agenda": "agenda", "capacity": "capacity"},
        ("title", "starts_at"),
        "title",
        ("title",),
    ),
)


@dataclass(frozen=True)
class _Row:
    id: int
    values: Values


@dataclass(frozen=True)
class _Item:
    label: str
    values: Values


@dataclass
class _Changes:
    """The rows one kind of entry adds and changes, and the stored row each entry matched."""

    inserts: list[Values] = field(default_factory=list)
    updates: list[Values] = field(default_factory=list)
    renamed: list[int] = field(default_factory=list)  # updates that change the natural key
    # Updates of meetings that calendar apps must take over (Meeting.REVISED_BY).
    revised: list[int] = field(default_factory=list)
    matched: list[int | None] = field(default_factory=list)
    unchanged: int = 0

    def counts(self) -> Counts:
        """Return what these changes do, counted."""
        return Counts(len(self.inserts), len(self.updates), self.unchanged)


Stored = dict[str, list[_Row]]


@dataclass(frozen=True)
class ImportPlan:
    """Every write of an import, checked against what was stored when it was made."""

    changes: dict[str, _Changes]

    def summary(self) -> ImportSummary:
        """Return what the plan does, counted."""
        return ImportSummary(*(self.changes[kind.section].counts() for kind in KINDS))

    @property
    def size(self) -> int:
        """Return the number of rows it writes."""
        return sum(len(c.inserts) + len(c.updates) for c in self.changes.values())


async def read_stored(session: AsyncSession) -> Stored:
    """Read the partners, meetings, tips and series an import compares itself with.

    Under "occurrences": the series' meetings, which a meeting entry may not take the place of.
    """
    stored: Stored = {}
    made = await session.execute(
        select(Meeting.id, Meeting.title, Meeting.starts_at).where(Meeting.series_id.is_not(None))
    )
    stored["occurrences"] = [
        _Row(row_id, {"title": title, "starts_at": starts}) for row_id, title, starts in made
    ]
    for kind in KINDS:
        columns = [getattr(kind.model, name) for name in kind.columns]
        query = select(kind.model.id, *columns)  # type: ignore[attr-defined]
        if kind.stored is not None:
            query = query.where(kind.stored)
        result = await session.execute(query)
        rows = (_Row(row[0], dict(zip(kind.columns, row[1:], strict=True))) for row in result)
        stored[kind.section] = list(rows)
    return stored


def _fit(values: Values, row: _Row | None, now: dt.datetime) -> Values:
    """Keep a stored key the entry does not give; turn a cancelled flag into its time."""
    if row is not None and values["import_key"] is None:
        values["import_key"] = row.values["import_key"]
    if "cancelled_at" in values:
        stored = None if row is None else row.values["cancelled_at"]
        values["cancelled_at"] = (stored or now) if values["cancelled_at"] else None
    return values


def _match(
    kind: _Kind, items: Sequence[_Item], rows: Sequence[_Row], now: dt.datetime
) -> tuple[_Changes, list[Problem]]:
    """Pair each entry with its stored row, by its key or else its natural key: one upsert."""
    by_key = {row.values["import_key"]: row for row in rows if row.values["import_key"]}
    by_natural = {kind.natural_key(row.values): row for row in rows}
    pairs: list[tuple[_Item, _Row | None]] = []
    # Entries given twice: data built in code may have them, and a file may name one partner
    # by its stored name and by its new one.
    problems = duplicates(
        (item.label, kind.natural_key(item.values), kind.named) for item in items
    )
    keyed = [item for item in items if item.values["import_key"]]
    problems += duplicates((item.label, item.values["import_key"], "key") for item in keyed)
    for item in items:
        key = item.values["import_key"]
        row = by_key.get(key) if key else None
        if row is None:
            row = by_natural.get(kind.natural_key(item.values))
            if key and row is not None and row.values["import_key"] not in (None, key):
                other = {"other": row.values["import_key"]}
                problems.append(Problem(item.label, "key", "other_key", other))
        pairs.append((item, row))
    claimed = {row.id for _item, row in pairs if row is not None}
    changes = _Changes()
    for item, row in pairs:
        holder = by_natural.get(kind.natural_key(item.values))
        if holder is not None and holder is not row and holder.id not in claimed:
            problems.append(Problem(item.label, kind.named, "taken", {"field": kind.named}))
        values = _fit(item.values, row, now)
        changes.matched.append(None if row is None else row.id)
        if row is None:
            changes.inserts.append(values)
        elif any(row.values[name] != value for name, value in values.items()):
            changes.updates.append({"id": row.id, **values})
            if kind.natural_key(values) != kind.natural_key(row.values):
                changes.renamed.append(row.id)
            revised_by = getattr(kind.model, "REVISED_BY", ())
            if any(row.values[name] != values[name] for name in revised_by if name in values):
                changes.revised.append(row.id)
        else:
            changes.unchanged += 1
    return changes, problems


def plan_import(data: NetworkData, stored: Stored, now: dt.datetime | None = None) -> ImportPlan:
    """Check the data against what is stored and plan its writes; raise ImportFileError."""
    labels = {
        kind.section: [
            label(kind.section, index, getattr(entry, kind.named))
            for index, entry in enumerate(getattr(data, kind.section), start=1)
        ]
        for kind in KINDS
    }
    problems: list[Problem] = []
    # A tip names its partner as written in this file or as stored; new ones get ids later.
    partner_ids: dict[str, int | tuple[str, str]] = {
        row.values["name_folded"]: row.id for row in stored["partners"]
    }
    changes: dict[str, _Changes] = {}
    for kind in KINDS:
        items = []
        for where, entry in zip(labels[kind.section], getattr(data, kind.section), strict=True):
            values = {column: getattr(entry, name) for name, column in kind.fields.items()}
            if kind.model is Partner:
                values["name_folded"] = fold_name(entry.name)
            elif kind.model is Tip:
                values["partner_id"] = partner_ids.get(fold_name(entry.partner))
                if values["partner_id"] is None:
                    detail = {"value": entry.partner}
                    problems.append(Problem(where, "partner", "unknown_partner", detail))
                    continue
            items.append(_Item(where, values))
        if kind.model is Meeting:
            # The same title at the same time as an occurrence of a series: the table
            # refuses it, so the file is told first.
            made = {kind.natural_key(row.values) for row in stored.get("occurrences", ())}
            problems += [
                Problem(item.label, kind.named, "taken", {"field": kind.named})
                for item in items
                if kind.natural_key(item.values) in made
            ]
        found, kind_problems = _match(kind, items, stored[kind.section], now or utcnow())
        changes[kind.section] = found
        problems += kind_problems
        if kind.model is Partner:
            for item, row_id in zip(items, found.matched, strict=True):
                folded = item.values["name_folded"]
                partner_ids[folded] = ("new", folded) if row_id is None else row_id
    if problems:
        raise ImportFileError(problems)
    return ImportPlan(changes)
