"""Benchmark `klimabot import` of a large file: total time, time holding the write lock, memory."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from common import code_version
from sqlalchemy import Connection, event

from storage.db import READ_ONLY, open_database, session_factory
from storage.exchange import import_file

TZ = ZoneInfo("Europe/Berlin")
CATEGORIES = ("energy", "heat", "mobility", "procurement", "buildings", "processes", "other")
WORDS = [
    *("Wärmepumpe", "Druckluft", "Leckage", "Photovoltaik", "Dämmung", "Abwärme", "LED"),
    *("Beleuchtung", "Lastenrad", "Jobticket", "Ökostrom", "Heizkurve", "Kompressor"),
    *("Fuhrpark", "Dienstreise", "Verpackung", "Recycling", "Kälte", "Lüftung", "Steuerung"),
    *("Zeitschaltuhr", "Standby", "Messung", "Zähler", "Einsparung", "Kosten", "Halle", "Büro"),
]
CASES = ("new", "unchanged", "changed")


def generate(tips: int, partners: int, meetings: int, *, changed: bool = False) -> str:
    """Write an import file with a fixed seed; `changed` alters every tenth tip's text."""
    rng = random.Random(2035)
    lines = ["partners:"]
    names = [f"Partner {n:04d} GmbH" for n in range(partners)]
    for name in names:
        lines += [f"  - name: {name}", "    sector: Handwerk", "    joined: 2022-10-01"]
    lines.append("meetings:")
    for n in range(meetings):
        day = 1 + n % 28
        lines += [
            f"  - title: Netzwerktreffen {n}",
            f"    starts: 2027-{1 + n % 12:02d}-{day:02d} 14:00",
            f"    ends: 2027-{1 + n % 12:02d}-{day:02d} 17:00",
            "    location: IHK Düsseldorf",
        ]
    lines.append("tips:")
    for n in range(tips):
        text = " ".join(rng.choices(WORDS, k=30))
        if changed and n % 10 == 0:
            text += " Nachtrag."
        lines += [
            f"  - title: Tipp {n} – {rng.choice(WORDS)} {rng.choice(WORDS)}",
            f"    partner: {names[n % partners]}",
            f"    category: {rng.choice(CATEGORIES)}",
            f"    text: {text}",
            f"    co2_t_per_year: {rng.randint(1, 500) / 10}",
        ]
    return "\n".join(lines) + "\n"


async def measure(database: Path, yaml_text: str) -> dict[str, float]:
    """Import once into the database; return the seconds taken and those holding the lock."""
    engine = await open_database(f"sqlite+aiosqlite:///{database}")
    locked: list[float] = []
    began: list[float] = []

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        if not connection.get_execution_options().get(READ_ONLY, False):
            began.append(time.perf_counter())

    @event.listens_for(engine.sync_engine, "commit")
    def _commit(_connection: Connection) -> None:
        if began:
            locked.append(time.perf_counter() - began.pop())

    start = time.perf_counter()
    summary = await import_file(session_factory(engine), yaml_text, TZ)
    total = time.perf_counter() - start
    await engine.dispose()
    return {
        "total_s": total,
        "write_transaction_s": max(locked, default=0.0),
        "tips_created": summary.tips.created,
        "tips_updated": summary.tips.updated,
        "tips_unchanged": summary.tips.unchanged,
    }


def run_case(case: str, database: Path, tips: int) -> None:
    """Run one case in this process and print its figures as JSON."""
    yaml_text = generate(tips, 300, 60, changed=case == "changed")
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = asyncio.run(measure(database, yaml_text))
    figures["file_mb"] = len(yaml_text.encode()) / 1e6
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["rss_before_mb"] = baseline / 1024
    print(json.dumps(figures))


def main() -> None:
    """Import a generated file into a new database, again unchanged, then with changes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tips", type=int, default=60_000)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.database, args.tips)
        return
    print(f"code: {code_version()}")
    print(f"{args.tips} tips, 300 partners, 60 meetings; each case in a new process")
    print(f"{'case':<10} {'file MB':>8} {'total s':>8} {'in write tx s':>14} {'peak RSS MB':>12}")
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.db"
        for case in CASES:
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--case",
                    case,
                    "--tips",
                    str(args.tips),
                    "--database",
                    str(database),
                ],
                check=False,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise SystemExit(result.stderr)
            f = json.loads(result.stdout)
            print(
                f"{case:<10} {f['file_mb']:>8.1f} {f['total_s']:>8.2f} "
                f"{f['write_transaction_s']:>14.2f} {f['peak_rss_mb']:>12.0f}"
                f"   (tips: {f['tips_created']} new, {f['tips_updated']} updated,"
                f" {f['tips_unchanged']} unchanged)"
            )


if __name__ == "__main__":
    main()
