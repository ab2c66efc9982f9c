"""Writing partners, meetings and tips in the import format."""

from __future__ import annotations

import datetime as dt

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.exchange.values import clean_long, local_text
from storage.models import Meeting, MeetingSeries, Partner, Tip
from storage.series import exception_of, occurrences


class _Dumper(yaml.SafeDumper):
    """A dumper that indents lists under their key and writes multi-line text as blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, indentless=False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
_DUMPER: type[yaml.SafeDumper] = _Dumper


def _entry(**values: object) -> dict[str, object]:
    """Build one entry, leaving out optional fields that are empty or false."""
    return {name: value for name, value in values.items() if value not in (None, "", False)}


def _line(value: str | None) -> str | None:
    return None if value is None else value.strip()


def _long(value: str | None) -> str | None:
    return None if value is None else clean_long(value)


async def _series_entry(
    session: AsyncSession, series: MeetingSeries, timezone: dt.tzinfo
) -> dict[str, object]:
    """Write a series with the occurrences that differ from its rule, by their original start."""
    exceptions = []
    for occurrence in await occurrences(session, series.id):
        found = exception_of(series, occurrence)
        if found is None or occurrence.recurrence_id is None:
            continue
        moved = found.get("starts_at")
        ends = found.get("ends_at")
        exceptions.append(
            _entry(
                occurrence=local_text(occurrence.recurrence_id, timezone),
                starts=moved and local_text(moved, timezone),
                ends=ends and local_text(ends, timezone),
                title=_line(found.get("title")),
                location=_line(found.get("location")),
                online_url=_line(found.get("online_url")),
                agenda=_long(found.get("agenda")),
                capacity=found.get("capacity"),
                cancelled=found.get("cancelled", False),
            )
        )
    return _entry(
        key=series.import_key,
        title=_line(series.title),
        starts=local_text(series.starts_at, timezone),
        ends=series.ends_at and local_text(series.ends_at, timezone),
        rule=series.rule,
        location=_line(series.location),
        online_url=_line(series.online_url),
        agenda=_long(series.agenda),
        capacity=series.capacity,
        exceptions=exceptions or None,
    )


async def export_data(session: AsyncSession, timezone: dt.tzinfo) -> str:
    """Write partners, meetings (cancelled ones flagged), visible tips and series, importably."""
    partners = sorted(await session.scalars(select(Partner)), key=lambda p: p.name.strip())
    meetings = sorted(
        await session.scalars(select(Meeting).where(Meeting.series_id.is_(None))),
        key=lambda m: (m.starts_at, m.title.strip()),
    )
    every_series = sorted(
        await session.scalars(select(MeetingSeries)), key=lambda s: (s.starts_at, s.title.strip())
    )
    result = await session.execute(
        select(Tip, Partner.name).join(Partner).where(Tip.hidden_at.is_(None))
    )
    tips = sorted(result, key=lambda row: (row[1].strip(), row[0].title.strip()))
    document: dict[str, list[dict[str, object]]] = {
        "partners": [
            _entry(
                key=p.import_key,
                name=_line(p.name),
                sector=_line(p.sector),
                joined=p.joined,
                website=_line(p.website),
                description=_long(p.description),
            )
            for p in partners
        ],
        "meetings": [
            _entry(
                key=m.import_key,
                title=_line(m.title),
                starts=local_text(m.starts_at, timezone),
                ends=m.ends_at and local_text(m.ends_at, timezone),
                location=_line(m.location),
                online_url=_line(m.online_url),
                agenda=_long(m.agenda),
                capacity=m.capacity,
                cancelled=m.cancelled_at is not None,
            )
            for m in meetings
        ],
        "tips": [
            _entry(
                key=tip.import_key,
                title=_line(tip.title),
                partner=_line(name),
                category=tip.category.value,
                text=clean_long(tip.text),
                co2_t_per_year=tip.co2_t_per_year,
            )
            for tip, name in tips
        ],
        "series": [await _series_entry(session, s, timezone) for s in every_series],
    }
    if not document["series"]:
        del document["series"]  # files without series read as they always did
    # One dump per section, so a blank line can separate them for the reader.
    return "\n".join(
        yaml.dump(
            {section: entries},
            Dumper=_DUMPER,
            allow_unicode=True,
            sort_keys=False,
            width=88,
        )
        for section, entries in document.items()
    )
