"""Benchmark Telegram command round trips: the klimabot process and a bare echo bot, same peer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import telegram  # noqa: E402
from common import ChildProcess, RoundTrips, code_version  # noqa: E402

from storage.db import open_database, session_factory  # noqa: E402
from storage.demo import load_demo  # noqa: E402
from tests.telegram_peer import Limits, PeerUser, TelegramPeer  # noqa: E402

TOKEN = "123456:BENCH"
BOT_USERNAME = "KlimaTestBot"
# The commands the passes send, and the start of Klimabot's answer in German: /meetings is
# the same for everyone, /meeting 1 carries the member's own answer.
COMMANDS = {"/meetings": "Nächste Treffen", "/meeting 1": "1. Netzwerktreffen"}
FIRST_USER = 700_001
TZ = "Europe/Berlin"
CAPACITY = 150.0  # commands/s through the database, closed loop: five times Telegram's cap
P99 = 100.0  # ms: Klimabot's p99 round trip at Telegram's rate, open loop
HIGH = 100_000  # send limits in the bot's config for the unlimited passes: never reached
# Dispatch allows each person 20 commands in 30 s (rate_limit in the config) and ignores
# the rest; Telegram lets a bot send one message a second to a chat.
PER_PERSON = 20
REPLY_TIMEOUT = 120.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
KLIMABOT_READY = "Klimabot läuft"
ECHO_READY = "echo bot ready"
NOISY = 0.2  # cores other processes may use before the figures count as inflated


@dataclass(slots=True)
class Usage:
    """CPU seconds used by this process, the bot process and the whole machine, at a time."""

    at: float
    own: float
    bot: float
    machine: float | None


@dataclass(slots=True)
class Pass(RoundTrips):
    """One measured pass: round trips (ns), wall time and the CPU the parts used."""

    bot: str
    command: str
    mode: str  # closed, open or limits
    users: int
    durations: list[int]
    seconds: float
    bot_cores: float
    peer_cores: float
    others: float | None
    failed_calls: int
    connections: int
    limits: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """Return the bot, what it was sent and how."""
        return f"{self.bot} {self.command} {self.mode}"


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100, help="users sending at once")
    parser.add_argument(
        "--commands", type=int, default=1000, help="commands per closed-loop pass, in all"
    )
    parser.add_argument("--rounds", type=int, default=2, help="closed-loop passes per bot")
    parser.add_argument(
        "--rate", type=float, default=30.0, help="commands/s offered in the open-loop passes"
    )
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="length of an open-loop pass (0: skip)"
    )
    parser.add_argument(
        "--limited-commands",
        type=int,
        default=None,
        help="commands of the pass with Telegram's real limits (default: --commands; 0: skip)",
    )
    parser.add_argument(
        "--command",
        choices=sorted(COMMANDS),
        action="append",
        help="what Klimabot's users send (repeatable; default: both)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run Klimabot under cProfile and write the last closed-loop pass's stats here",
    )
    args = parser.parse_args()
    args.command = args.command or list(COMMANDS)
    if args.profile is not None:
        args.profile = args.profile.resolve()
    if args.limited_commands is None:
        args.limited_commands = args.commands
    per_user = math.ceil(max(args.commands, args.limited_commands) / args.users) + 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.users < 1 or args.commands < args.users or per_user > PER_PERSON:
        parser.error(
            f"each user sends one warm-up and then up to {PER_PERSON - 1} commands"
            " (Klimabot ignores more than 20 per person in 30 s): choose"
            " users <= commands <= 19 * users"
        )
    if args.seconds > 0:
        offered = math.ceil(args.rate * args.seconds / args.users) + 1
        if args.rate <= 0 or args.rate > args.users or offered > PER_PERSON:
            parser.error(
                "in the open-loop pass each user sends at most one command a second and"
                f" {PER_PERSON} in all: choose rate <= users and rate * seconds <="
                f" {PER_PERSON - 1} * users"
            )
    return args


def tick_seconds(values: list[str]) -> float:
    """Return the sum of clock ticks as seconds."""
    return sum(int(value) for value in values) / os.sysconf("SC_CLK_TCK")


def usage(pid: int | None) -> Usage:
    """Return the CPU time of this process, of process ``pid`` and of all (Linux only)."""
    own = os.times()
    bot = 0.0
    machine = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        if pid is not None:
            # utime and stime, fields 14 and 15; the name in parentheses may hold spaces.
            stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            bot = tick_seconds(stat[11:13])
        ticks = Path("/proc/stat").read_text().split()[1:9]
        # user nice system idle iowait irq softirq steal: all but idle and iowait is busy.
        machine = tick_seconds(ticks) - tick_seconds(ticks[3:5])
    return Usage(time.monotonic(), own.user + own.system, bot, machine)


def sockets(pid: int) -> int:
    """Return how many sockets process ``pid`` has open (Linux only, else 0)."""
    count = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(entry.path).startswith("socket:")
    return count


class BotProcess(ChildProcess):
    """Klimabot (`klimabot run`) or the echo bot in its own process, polling the peer."""

    def __init__(
        self, kind: str, folder: Path, peer: TelegramPeer, *, limited: bool, profile: Path | None
    ) -> None:
        super().__init__(kind, start_timeout=START_TIMEOUT, stop_timeout=STOP_TIMEOUT)
        self.folder, self.peer, self.limited = folder, peer, limited
        self.profile = profile

    async def prepare(self) -> list[str]:
        """Write config and demo database (Klimabot) and return the command line."""
        if self.kind == "echo":
            return [str(ROOT / "bench" / "echo_bot.py"), "--base-url", self.peer.base_url]
        database = self.folder / "klimabot.db"
        engine = await open_database(f"sqlite+aiosqlite:///{database}")
        try:
            async with session_factory(engine)() as session:
                await load_demo(session, dt.datetime.now(dt.UTC).date(), ZoneInfo(TZ))
                await session.commit()
        finally:
            await engine.dispose()
        limits = (
            ""
            if self.limited
            else "  limits:\n"
            f"    messages_per_second: {HIGH}\n"
            f"    private_chat_messages_per_second: {HIGH}\n"
            f"    group_messages_per_minute: {HIGH}\n"
        )
        config = self.folder / "config.yaml"
        config.write_text(
            f"database:\n  url: sqlite+aiosqlite:///{database}\n"
            f"telegram:\n  base_url: {self.peer.base_url}\n  mode: polling\n{limits}",
            encoding="utf-8",
        )
        prefix = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        return [*prefix, "-m", "bot", "run", "--config", str(config)]

    async def start(self) -> None:
        """Start the process and wait for its ready line on stderr."""
        arguments = await self.prepare()
        token = "KLIMABOT_TELEGRAM_TOKEN" if self.kind == "klimabot" else "ECHO_BOT_TOKEN"
        ready = KLIMABOT_READY if self.kind == "klimabot" else ECHO_READY
        await self.launch(arguments, {token: TOKEN}, (ready,))


def fits(kind: str, command: str) -> Callable[[str], bool]:
    """Return the check that a reply is the expected answer to the command."""
    if kind == "echo":
        return lambda text: text == command
    return lambda text: text.startswith(COMMANDS[command])


async def ask(
    peer: TelegramPeer, user: PeerUser, command: str, count: int, good: Callable[[str], bool]
) -> list[int]:
    """Send the command ``count`` times, each as soon as the previous one was answered."""
    durations = []
    for _ in range(count):
        started = time.perf_counter_ns()
        await user.send(command)
        reply = await peer.wait_for(user.id, timeout=REPLY_TIMEOUT)
        durations.append(time.perf_counter_ns() - started)
        if not good(reply.text):
            raise RuntimeError(f"unexpected reply to user {user.id}: {reply.text[:200]!r}")
    return durations


async def load(
    peer: TelegramPeer, users: list[PeerUser], command: str, commands: int, kind: str
) -> list[int]:
    """Let all users send their share of the commands at once (a closed loop per user)."""
    shares = [commands // len(users) + (i < commands % len(users)) for i in range(len(users))]
    good = fits(kind, command)
    done = await asyncio.gather(
        *(ask(peer, u, command, n, good) for u, n in zip(users, shares, strict=True))
    )
    return [duration for durations in done for duration in durations]


async def ask_on_time(
    peer: TelegramPeer,
    user: PeerUser,
    command: str,
    due: list[int],
    good: Callable[[str], bool],
) -> list[int]:
    """Send the command at each due time (perf_counter ns); time each answer from its due time.

    Timing from the due time, not the send, keeps a late send (the previous answer still
    awaited) in the figures instead of hiding it.
    """
    durations = []
    for when in due:
        await asyncio.sleep(max(0.0, (when - time.perf_counter_ns()) / 1e9))
        await user.send(command)
        reply = await peer.wait_for(user.id, timeout=REPLY_TIMEOUT)
        durations.append(time.perf_counter_ns() - when)
        if not good(reply.text):
            raise RuntimeError(f"unexpected reply to user {user.id}: {reply.text[:200]!r}")
    return durations


async def offer(
    peer: TelegramPeer,
    users: list[PeerUser],
    command: str,
    kind: str,
    *,
    rate: float,
    seconds: float,
) -> list[int]:
    """Offer ``rate`` commands a second for ``seconds``, from the users in turn (open loop)."""
    count = round(rate * seconds)
    start = time.perf_counter_ns() + 100_000_000
    due: list[list[int]] = [[] for _ in users]
    for i in range(count):
        due[i % len(users)].append(start + round(i * 1e9 / rate))
    good = fits(kind, command)
    done = await asyncio.gather(
        *(ask_on_time(peer, u, command, d, good) for u, d in zip(users, due, strict=True))
    )
    return [duration for durations in done for duration in durations]


async def measure(
    kind: str,
    users: int,
    command: str,
    mode: str,
    amount: float,
    *,
    rate: float = 0.0,
    profile: Path | None = None,
) -> Pass:
    """Run one bot against a fresh peer: warm up, then time the load.

    ``mode`` is closed (``amount`` commands, each user sends on the answer), open (``amount``
    seconds at ``rate``) or limits (closed, with Telegram's limits in peer and config).
    The echo bot answers any text alike.
    """
    limited = mode == "limits"
    async with TelegramPeer(TOKEN, BOT_USERNAME) as peer:
        if not limited:
            peer.limits = Limits(overall=None, private_chat=None, group_chat=None)
        with tempfile.TemporaryDirectory(prefix="bench-telegram-") as folder:
            bot = BotProcess(kind, Path(folder), peer, limited=limited, profile=profile)
            try:
                await bot.start()
                assert bot.process is not None
                people = [peer.user(FIRST_USER + n, f"Nutzer {n}") for n in range(users)]
                # Warm-up: every user's first command (Klimabot creates the member then).
                await load(peer, people, command, users, kind)
                if mode == "open":
                    # Past Telegram's one message a second per chat since the warm-up.
                    await asyncio.sleep(1.0)
                first_call = len(peer.calls)
                before = usage(bot.process.pid)
                if mode == "open":
                    durations = await offer(peer, people, command, kind, rate=rate, seconds=amount)
                else:
                    durations = await load(peer, people, command, int(amount), kind)
                after = usage(bot.process.pid)
                connections = sockets(bot.process.pid)
                # Read now: a long poll still open gets its 409 only when the bot stops.
                failed = sum(1 for call in peer.calls[first_call:] if call.status >= 400)
            finally:
                await bot.stop()
    wall = after.at - before.at
    others = None
    if before.machine is not None and after.machine is not None:
        busy = after.machine - before.machine
        others = max(0.0, busy - (after.own - before.own) - (after.bot - before.bot)) / wall
    result = Pass(
        kind,
        command,
        mode,
        users,
        durations,
        wall,
        bot_cores=(after.bot - before.bot) / wall,
        peer_cores=(after.own - before.own) / wall,
        others=others,
        failed_calls=failed,
        connections=connections,
    )
    if limited:
        result.limits = {
            "overall": peer.max_rate(None, 1.0),
            "chat": max(peer.max_rate(user.id, 1.0) for user in people),
            "429": sum(1 for call in peer.calls if call.status == 429),
            "violations": len(peer.violations()),
        }
    return result


def row(label: str, result: Pass) -> str:
    """Return one line of the table."""
    others = "" if result.others is None else f"{result.others:.2f}"
    return (
        f"{label:<30} {len(result.durations):>8} {result.users:>5} {result.seconds:>7.2f}"
        f" {result.rate:>10.1f} {result.percentile(50):>8.1f} {result.percentile(99):>8.1f}"
        f" {result.cpu_ms:>7.2f} {result.bot_cores:>5.2f} {result.peer_cores:>5.2f} {others:>6}"
        f" {result.connections:>5}"
    )


def print_table(passes: list[Pass]) -> None:
    """Print every pass, with the medians of the closed-loop ones."""
    header = (
        f"{'pass':<30} {'commands':>8} {'users':>5} {'seconds':>7} {'commands/s':>10}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>7} {'bot':>5} {'peer':>5} {'others':>6}"
        f" {'conns':>5}"
    )
    print()
    print(header)
    print("-" * len(header))
    for mode in ("closed", "open", "limits"):
        labels = dict.fromkeys(p.label for p in passes if p.mode == mode)
        for label in labels:
            mine = [p for p in passes if p.label == label]
            for number, result in enumerate(mine, 1):
                print(row(f"{label} #{number}" if len(mine) > 1 else label, result))
            if len(mine) > 1:
                print(
                    f"{label + ' median':<30} {'':>8} {'':>5} {'':>7}"
                    f" {statistics.median(p.rate for p in mine):>10.1f}"
                    f" {statistics.median(p.percentile(50) for p in mine):>8.1f}"
                    f" {statistics.median(p.percentile(99) for p in mine):>8.1f}"
                    f" {statistics.median(p.cpu_ms for p in mine):>7.2f}"
                )
    print(
        "closed: each user sends the next command on the answer; open: commands offered at a"
        " fixed rate, timed from when each was due; cpu ms: the bot process's CPU time per"
        " command; bot, peer: cores the bot process and this one (peer and users) kept busy;"
        " others: cores all other processes kept busy; conns: sockets the bot process had"
        " open at the end (Bot API connections)"
    )
    failed = sum(p.failed_calls for p in passes if p.mode != "limits")
    if failed:
        print(f"warning: {failed} Bot API calls failed in the passes without limits")
    if any(p.others is not None and p.others > NOISY for p in passes):
        print(
            f"warning: other processes kept more than {NOISY} cores busy in some pass;"
            " those figures are inflated by contention for the cores"
        )


def verdicts(passes: list[Pass], rate: float) -> bool:
    """Print each target's verdict; tell whether all are met."""
    passed = True
    print()

    def median(bot: str, command: str | None, mode: str, figure: Callable[[Pass], float]) -> float:
        mine = [
            figure(p)
            for p in passes
            if p.bot == bot and p.mode == mode and command in (None, p.command)
        ]
        return statistics.median(mine) if mine else math.nan

    def cpu(mode: str) -> float:
        return median("echo", None, mode, lambda p: p.cpu_ms)

    echo_p99 = median("echo", None, "open", lambda p: p.percentile(99))
    for command in COMMANDS:
        capacity = median("klimabot", command, "closed", lambda p: p.rate)
        if not math.isnan(capacity):
            ok = capacity >= CAPACITY
            passed &= ok
            own = median("klimabot", command, "closed", lambda p: p.cpu_ms)
            print(
                f"{command} capacity: {capacity:.0f} commands/s (target >= {CAPACITY:.0f}):"
                f" {'PASS' if ok else 'FAIL'}; CPU {own:.2f} ms per command, echo bot"
                f" {cpu('closed'):.2f}; on a core of its own about {1000 / own:.0f} commands/s"
            )
        p99 = median("klimabot", command, "open", lambda p: p.percentile(99))
        if not math.isnan(p99):
            ok = p99 <= P99
            passed &= ok
            print(
                f"{command} at {rate:g} commands/s: p50"
                f" {median('klimabot', command, 'open', lambda p: p.percentile(50)):.1f} ms,"
                f" p99 {p99:.1f} ms (target <= {P99:.0f}): {'PASS' if ok else 'FAIL'}, echo bot"
                f" p99 {echo_p99:.1f} ms ({p99 / echo_p99:.1f}x); CPU"
                f" {median('klimabot', command, 'open', lambda p: p.cpu_ms):.2f} ms per command,"
                f" echo bot {cpu('open'):.2f}"
            )
    for limited in (p for p in passes if p.mode == "limits"):
        kept = (
            limited.limits["overall"] <= 30
            and limited.limits["chat"] <= 1
            and limited.limits["429"] == 0
            and limited.limits["violations"] == 0
        )
        passed &= kept
        print(
            f"Telegram's limits (peer's defaults, bot's default config), {limited.command}:"
            f" {limited.rate:.1f} commands/s, p50 {limited.percentile(50):.0f} ms,"
            f" p99 {limited.percentile(99):.0f} ms; at most {limited.limits['overall']}"
            f" messages in any second (<= 30), {limited.limits['chat']} per chat and second"
            f" (<= 1), {limited.limits['429']} answers 429, {limited.limits['violations']}"
            f" sends during a retry_after: {'PASS' if kept else 'FAIL'}"
        )
    return passed


async def run(args: argparse.Namespace) -> bool:
    """Alternate the bots closed-loop, then offer each Telegram's rate, then keep its limits."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    # The echo bot answers any text alike: it gets the first command.
    plan = [("echo", args.command[0])] + [("klimabot", command) for command in args.command]
    passes = []
    for number in range(1, args.rounds + 1):
        for kind, command in plan:
            print(f"round {number}: {kind}, {command}, {args.commands} commands ...", flush=True)
            profile = args.profile if kind == "klimabot" else None
            passes.append(
                await measure(kind, args.users, command, "closed", args.commands, profile=profile)
            )
    if args.seconds > 0:
        for kind, command in plan:
            print(f"{kind}, {command}, {args.rate:g}/s for {args.seconds:g} s ...", flush=True)
            passes.append(
                await measure(kind, args.users, command, "open", args.seconds, rate=args.rate)
            )
    if args.limited_commands:
        command = args.command[0]
        print(f"klimabot within Telegram's limits, {args.limited_commands} commands ...")
        passes.append(
            await measure("klimabot", args.users, command, "limits", args.limited_commands)
        )
    print_table(passes)
    return verdicts(passes, args.rate)


def main() -> None:
    """Run the benchmark; exit with status 1 when a target or a limit is missed."""
    args = parse_args()
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    print(f"code: {code_version()}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores (may use CPU"
        f" {','.join(map(str, usable)) or '?'}), Python {platform.python_version()},"
        f" python-telegram-bot {telegram.__version__}"
    )
    print(
        f"workload: {args.users} users, {', '.join(args.command)}; closed loop"
        f" {args.commands} commands per pass, open loop {args.rate:g}/s for {args.seconds:g} s"
    )
    try:
        passed = asyncio.run(run(args))
    except asyncio.CancelledError:  # SIGTERM
        print("terminated; the bots are stopped too", file=sys.stderr)
        raise SystemExit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:
        print("interrupted; the bots are stopped too", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
