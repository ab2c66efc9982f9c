"""Time a cold `klimabot check-config` against a bare `python -c pass`: how fast the CLI starts.

Runs each command alternately in a new folder with its own config and database, and prints
the median and the ratio. `--source DIR` runs the klimabot of another source tree (such as
an older version unpacked with `git archive`), with this interpreter and its packages.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str], folder: Path, environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, cwd=folder, env=environment, check=True, capture_output=True, timeout=60
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--source", type=Path, help="the source tree to run (default: this)")
    args = parser.parse_args()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KLIMABOT_")}
    environment.update(LANG="C.UTF-8", LC_ALL="")
    if args.source:
        environment["PYTHONPATH"] = str(args.source.resolve())
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "config.yaml").write_text(
            "database:\n  url: sqlite+aiosqlite:///klimabot.db\n", encoding="utf-8"
        )
        bare = [sys.executable, "-c", "pass"]
        check = [sys.executable, "-m", "bot", "check-config"]
        timed(check, folder, environment)  # warm the file cache and the bytecode
        times: dict[str, list[float]] = {"python -c pass": [], "klimabot check-config": []}
        for _ in range(args.runs):
            times["python -c pass"].append(timed(bare, folder, environment))
            times["klimabot check-config"].append(timed(check, folder, environment))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(
            f"{name:24} median {medians[name] * 1000:6.0f} ms"
            f"  min {min(values) * 1000:6.0f} ms  max {max(values) * 1000:6.0f} ms"
        )
    ratio = medians["klimabot check-config"] / medians["python -c pass"]
    print(f"ratio {ratio:.1f} ({args.runs} runs each)")


if __name__ == "__main__":
    main()
