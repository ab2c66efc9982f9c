"""Run the ``klimabot`` command line and write down when each Telegram message got its slot.

``python bench/pacing_trace.py FILE run --config X`` runs ``klimabot run --config X``; every
message request that passes the pacer's overall slot adds a line to FILE: when it joined the
line for the slot, when it got the slot, when Telegram answered (``time.monotonic()``, the
clock the peer's ``Call.at`` uses too), how many were waiting when it joined, its priority.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    from bot.cli import main as klimabot
    from bot.transports import telegram_pacing

    trace = Path(sys.argv[1]).open("w", buffering=1, encoding="utf-8")  # noqa: SIM115
    original = telegram_pacing.SendPacer._overall_slot

    @contextlib.asynccontextmanager
    async def traced(self: telegram_pacing.SendPacer, priority: int) -> AsyncIterator[None]:
        joined, waiting = time.monotonic(), len(self._overall._waiting)
        async with original(self, priority):
            started = time.monotonic()
            try:
                yield
            finally:
                answered = time.monotonic()
                trace.write(f"{joined:.6f} {started:.6f} {answered:.6f} {waiting} {priority}\n")

    telegram_pacing.SendPacer._overall_slot = traced  # type: ignore[method-assign]
    sys.argv = ["klimabot", *sys.argv[2:]]
    return klimabot()


if __name__ == "__main__":
    sys.exit(main())
