"""Writing partners, meetings and tips in the import format."""

from __future__ import annotations

import datetime as dt

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.exchange.values import clean_long, local_text
from storage.models import Meeting, Partner, Tip


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


async def export_data(session: AsyncSession, timezone: dt.tzinfo) -> str:
    """Write partners, meetings (cancelled ones flagged) and visible tips in the import format."""
    partners = sorted(await session.scalars(select(Partner)), key=lambda p: p.name.strip())
    meetings = sorted(
        await session.scalars(select(Meeting)), key=lambda m: (m.starts_at, m.title.strip())
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
    }
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
