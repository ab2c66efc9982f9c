"""What the benchmarks share: which code the figures belong to."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def code_version() -> str:
    """Return the checked-out commit and the code files changed since, as git tells."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True
    )
    status = subprocess.run(
        [*git, "status", "--porcelain", "--", "bot", "handlers", "storage"],
        check=False,
        capture_output=True,
        text=True,
    )
    if head.returncode != 0:
        return "unknown (no git)"
    changed = [line[3:] for line in status.stdout.splitlines()]
    return head.stdout.strip() + (f" + changes in {', '.join(changed)}" if changed else "")
