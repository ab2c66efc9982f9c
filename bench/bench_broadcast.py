"""Benchmark a Telegram broadcast: how near the cap it sends, what members feel meanwhile."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import ChildProcess, CpuMeter, code_version  # noqa: E402

from bot.transports.telegram_pacing import Priority  # noqa: E402
from storage.db import open_database, session_factory  # noqa: E402
from storage.demo import load_demo  # noqa: E402
from tests.bot_process import store_subscribers  # noqa: E402
from tests.telegram_peer import Call, PeerUser, TelegramPeer  # noqa: E402

TOKEN = "123456:BENCH"
COORDINATOR = 900_001
FIRST_MEMBER = 1_000_000
FIRST_PROBE = 2_000_000
CAP = 30.0  # Telegram's messages a second for one bot
HEADING = "📣 Mitteilung der Koordination"
READY = "Klimabot läuft"
EFFICIENCY = 0.95  # of the cap, at least
SLOWER = 1.5  # a member's p99 during a broadcast: at most this times the p99 without …
PLUS_MS = 50.0  # … plus this


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--round-trip", type=float, default=0.040, help="seconds per API call")
    parser.add_argument("--probes", type=int, default=40, help="/meetings samples without load")
    parser.add_argument("--probe-every", type=float, default=0.5, help="seconds between samples")
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="note in FILE when each message got its slot; say where the time between went",
    )
    return parser.parse_args()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def prepare(folder: Path, peer: TelegramPeer, recipients: int) -> Path:
    """Write the config and a database with the demo network and the subscribers."""
    database = folder / "klimabot.db"
    config = folder / "config.yaml"
    config.write_text(
        f"database:\n  url: sqlite+aiosqlite:///{database}\n"
        f"coordinators:\n  telegram: [{COORDINATOR}]\n"
        f"rate_limit:\n  commands: 1000\n"
        f"telegram:\n  base_url: {peer.base_url}\n",
        encoding="utf-8",
    )
    engine = await open_database(f"sqlite+aiosqlite:///{database}")
    async with session_factory(engine)() as session:
        await load_demo(session, dt.datetime.now(dt.UTC).date(), ZoneInfo("Europe/Berlin"))
        await session.commit()
    await engine.dispose()
    members = list(range(FIRST_MEMBER, FIRST_MEMBER + recipients))
    for user_id in members:
        peer.started(peer.user(user_id, f"Mitglied {user_id}"))
    store_subscribers(database, members, "announcements")
    return config


class Prober:
    """Members asking /meetings one after another, each a new person, timing each answer."""

    def __init__(self, peer: TelegramPeer) -> None:
        self.peer = peer
        self.next_id = FIRST_PROBE

    async def ask(self) -> float:
        """Return one /meetings round trip in milliseconds."""
        user: PeerUser = self.peer.user(self.next_id, "Probe")
        self.next_id += 1
        started = time.perf_counter()
        await user.send("/meetings")
        await self.peer.wait_for(user.id, timeout=60)
        return (time.perf_counter() - started) * 1000

    async def sample(self, every: float, count: int | None, until: asyncio.Event) -> list[float]:
        """Ask every ``every`` seconds, ``count`` times or until the event is set."""
        times: list[float] = []
        while (count is None or len(times) < count) and not until.is_set():
            times.append(await self.ask())
            await asyncio.sleep(every)
        return times


@dataclass(frozen=True)
class Slot:
    """One message as the pacer saw it (``time.monotonic()``, as the peer's ``Call.at``)."""

    joined: float  # joined the line for an overall slot
    started: float  # got it and went out
    answered: float  # Telegram's answer came back
    waiting: int  # others in line when it joined
    priority: int


def read_slots(trace: Path) -> list[Slot]:
    rows = [line.split() for line in trace.read_text(encoding="utf-8").splitlines()]
    slots = [Slot(float(a), float(b), float(c), int(d), int(e)) for a, b, c, d, e in rows]
    return sorted(slots, key=lambda slot: slot.started)


def explain(slots: list[Slot], arrivals: list[Call]) -> None:
    """Say where the time between two windows of CAP messages went."""
    window = int(CAP)
    gaps, starved, late, waiting = [], [], [], []
    pushed = [k for k, slot in enumerate(slots) if slot.priority == Priority.PUSH]
    for k in range(max(window, pushed[0] + 1), pushed[-1] + 1):  # while the broadcast ran
        # The earliest the pacer could let it go: a second after the answer to the message
        # CAP before, and an even share of the second after the one before.
        gate = max(slots[k - window].answered + 1.0, slots[k - 1].started + 1 / CAP)
        gaps.append(slots[k].started - gate)
        starved.append(max(0.0, slots[k].joined - gate))  # nobody was in line at the gate
        late.append(slots[k].started - max(gate, slots[k].joined))  # the timer came late
        waiting.append(slots[k].waiting)
    during = slots[pushed[0] : pushed[-1] + 1]
    seen = [slot.answered - slot.started for slot in during]
    arrived = sorted(call.at for call in arrivals)
    transit = [a - s.started for a, s in zip(arrived, slots, strict=False)]
    mean = statistics.fmean
    print(
        f"trace of the {len(during)} messages while the broadcast ran, means per message (ms);"
        f" {mean(waiting):.1f} others in line for a slot when one joined:"
    )
    print(
        f"  sent to answered as the bot saw it {mean(seen) * 1000:.1f}"
        f" (sent to arrival at the peer {mean(transit) * 1000:.1f})"
    )
    print(
        f"  after its earliest allowed moment {mean(gaps) * 1000:.2f}: nobody in line"
        f" {mean(starved) * 1000:.2f}, the wake-up late {mean(late) * 1000:.2f}"
    )
    print(
        f"  a window of {window} took {(1 + mean(seen) + mean(gaps)) * 1000:.0f} ms"
        f" (1000 + answer + delay): at most {window / (1 + mean(seen) + mean(gaps)):.2f}/s"
    )


def report_done(peer: TelegramPeer, message_id: int) -> bool:
    return any(
        m.message_id == message_id and "Zustellbericht" in m.text
        for m in peer.messages(COORDINATOR)
    )


async def run(args: argparse.Namespace) -> bool:
    peer = await TelegramPeer.start(TOKEN)
    peer.call_delay = args.round_trip
    bot = ChildProcess("Klimabot", start_timeout=60)
    meter = CpuMeter()
    slots: list[Slot] = []
    try:
        with tempfile.TemporaryDirectory(prefix="klimabot-bench-") as folder:
            config = await prepare(Path(folder), peer, args.recipients)
            command = ["-m", "bot"]
            if args.trace:
                command = [str(ROOT / "bench" / "pacing_trace.py"), str(args.trace)]
            await bot.launch(
                [*command, "run", "--config", str(config)],
                {"KLIMABOT_TELEGRAM_TOKEN": TOKEN},
                (READY,),
            )
            assert bot.process is not None
            meter.start(bot.process.pid)
            prober = Prober(peer)
            never = asyncio.Event()
            quiet = await prober.sample(args.probe_every, args.probes, never)

            coordinator = peer.user(COORDINATOR, "Koordination")
            await coordinator.send("/announce Netzwerktreffen am 29. März: bitte anmelden!")
            preview = await peer.wait_for(COORDINATOR, timeout=60)
            done = asyncio.Event()
            started = time.monotonic()
            await coordinator.press(preview.raw, "📣 Senden")
            probing = asyncio.create_task(prober.sample(args.probe_every, None, done))
            await peer.wait_until(
                lambda: report_done(peer, preview.message_id), timeout=args.recipients
            )
            done.set()
            busy = await probing
            elapsed = time.monotonic() - started
            others, bot_cores = meter.others(), meter.cores(bot.process.pid)
            if args.trace:
                slots = read_slots(args.trace)
    finally:
        await bot.stop()
        await peer.stop()
    print(f"code: {code_version()}")
    print(f"cores: bot {bot_cores:.2f}, others {others:.2f} (above about 0.2 inflates figures)")
    return verdict(args, peer, quiet=quiet, busy=busy, elapsed=elapsed, slots=slots)


def verdict(
    args: argparse.Namespace,
    peer: TelegramPeer,
    *,
    quiet: list[float],
    busy: list[float],
    elapsed: float,
    slots: list[Slot],
) -> bool:
    """Print the figures and each target's verdict; tell whether all are met."""
    members = range(FIRST_MEMBER, FIRST_MEMBER + args.recipients)
    pushes = sorted(
        call.at
        for call in peer.calls
        if call.method.lower() == "sendmessage" and call.status == 200 and call.chat_id in members
    )
    rate = (len(pushes) - 1) / (pushes[-1] - pushes[0])
    # Replies to members and the coordinator's progress share the cap with the pushes (and go
    # first): the cap is used by every message the bot sent while the broadcast ran.
    during = [
        call.at
        for call in peer.calls
        if call.is_message and call.status == 200 and pushes[0] <= call.at <= pushes[-1]
    ]
    used = (len(during) - 1) / (pushes[-1] - pushes[0])
    efficiency = used / CAP
    most = peer.max_rate(None, 1.0)
    refused = sum(1 for call in peer.calls if call.status == 429)
    base_p99, busy_p99 = percentile(quiet, 99), percentile(busy, 99)
    allowed = SLOWER * base_p99 + PLUS_MS
    print(f"recipients {args.recipients}, round trip per call {args.round_trip * 1000:.0f} ms")
    print(
        f"sent {len(pushes)} in {pushes[-1] - pushes[0]:.1f} s (confirm to report {elapsed:.1f} s)"
    )
    print(
        f"messages meanwhile {len(during)}: {len(during) - len(pushes)} replies and progress;"
        f" {used:.2f}/s, efficiency {efficiency:.3f} (target >= {EFFICIENCY});"
        f" the pushes alone {rate:.2f}/s"
    )
    print(f"most messages in any second: {most} (cap {CAP:.0f}); 429 answers: {refused}")
    print(
        f"/meetings without a broadcast: p50 {percentile(quiet, 50):.0f} ms, "
        f"p99 {base_p99:.0f} ms ({len(quiet)} samples)"
    )
    print(
        f"/meetings during the broadcast: p50 {percentile(busy, 50):.0f} ms, "
        f"p99 {busy_p99:.0f} ms ({len(busy)} samples); allowed {allowed:.0f} ms"
    )
    if slots:
        explain(slots, [call for call in peer.calls if call.is_message and call.status == 200])
    checks = {
        "efficiency": efficiency >= EFFICIENCY,
        "never above the cap": most <= CAP,
        "no 429": refused == 0,
        "every recipient once": len(pushes) == args.recipients,
        "members answered promptly": busy_p99 <= allowed,
    }
    for name, ok in checks.items():
        print(f"{name}: {'PASS' if ok else 'FAIL'}")
    return all(checks.values())


def main() -> int:
    return 0 if asyncio.run(run(parse_args())) else 1


if __name__ == "__main__":
    sys.exit(main())
