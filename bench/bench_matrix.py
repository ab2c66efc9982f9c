"""Benchmark Matrix command round trips: the klimabot process and a bare echo bot, one Synapse."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import platform
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import ChildProcess, RoundTrips, code_version  # noqa: E402
from mautrix.types import RoomID  # noqa: E402

from tests.bot_process import BotProcess  # noqa: E402
from tests.matrix_member import MatrixMember  # noqa: E402
from tests.synapse import SYNAPSE_VERSION, Synapse  # noqa: E402

COMMAND = "!meetings"
KINDS = ("echo", "klimabot")
P99_RATIO = 2.0  # Klimabot's p99 round trip at a moderate rate: at most this times the echo's
# Dispatch allows each person 20 commands in 30 s and ignores the rest; every pass starts a
# fresh bot process, whose allowance is then spent on one warm-up and the timed commands.
PER_PERSON = 20
REPLY_TIMEOUT = 60.0
SETUP_TIMEOUT = 60.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SETUP_CONCURRENCY = 8
KLIMABOT_READY = ("Klimabot läuft", "Klimabot is running")
ECHO_READY = "matrix echo bot ready"
ECHO_TOKEN = "MATRIX_ECHO_TOKEN"
PROFILE_VARIABLE = "BENCH_MATRIX_PROFILE"
SETTLE = 1.0  # seconds a bot may finish its last events (its own replies) before it stops
# Synapse's access log: who, CPU of the request (user, system), response bytes, method, path.
ACCESS_LINE = re.compile(
    r"\{(?P<user>[^}]*)\} Processed request: \S+ ru=\((?P<user_cpu>[\d.]+)sec,"
    r' (?P<system_cpu>[\d.]+)sec\) \S+ (?P<size>\d+)B \d+ "(?P<method>[A-Z]+) (?P<path>[^ ?"]+)'
)
SHOWN_REQUESTS = 6


@dataclass(frozen=True, slots=True)
class Account:
    """A bot's account: its Matrix ID, password and first device's access token."""

    user_id: str
    password: str
    token: str


@dataclass(slots=True)
class Usage:
    """CPU seconds of this process, the bot, Synapse and the whole machine, at a time."""

    at: float
    own: float
    bot: float
    synapse: float
    machine: float | None


@dataclass(slots=True)
class Traffic:
    """Synapse's requests in a pass, by who (bot or members) and request: count, CPU, bytes."""

    count: Counter[tuple[str, str]] = field(default_factory=Counter)
    cpu: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    size: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass(slots=True)
class Pass(RoundTrips):
    """One measured pass: round trips (ns), wall time, CPU and the bot's requests."""

    bot: str
    encrypted: bool
    mode: str  # closed: each member sends on the answer; open: commands offered at a rate
    members: int
    durations: list[int]
    seconds: float
    bot_cores: float
    synapse_cores: float
    driver_cores: float
    others: float | None
    traffic: Traffic = field(default_factory=Traffic)

    @property
    def label(self) -> str:
        """Return the bot's name and whether the rooms were encrypted."""
        return f"{self.bot} {'e2e' if self.encrypted else 'plain'} {self.mode}"


@dataclass(slots=True)
class Stage:
    """What every pass shares: the homeserver, the bots' accounts and folders, the members."""

    synapse: Synapse
    folder: Path
    accounts: dict[str, Account]
    members: list[MatrixMember] = field(default_factory=list)
    # Each member's direct chat with each bot, by (bot, encrypted).
    rooms: dict[tuple[str, bool], list[RoomID]] = field(default_factory=dict)


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20, help="members sending at once")
    parser.add_argument("--commands", type=int, default=200, help="commands per pass, in all")
    parser.add_argument(
        "--rounds", type=int, default=2, help="encrypted passes per bot, closed and open loop"
    )
    parser.add_argument(
        "--plain-commands",
        type=int,
        default=None,
        help="commands of the one pass per bot in unencrypted rooms (default: --commands;"
        " 0: skip)",
    )
    parser.add_argument(
        "--rate", type=float, default=5.0, help="commands/s offered in the open-loop passes"
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, help="length of an open-loop pass (0: skip)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run both bots under cProfile and write one stats file per pass into this folder",
    )
    args = parser.parse_args()
    if args.plain_commands is None:
        args.plain_commands = args.commands
    offered = math.ceil(args.rate * args.seconds)
    per_member = (
        math.ceil(max(args.commands, args.plain_commands, offered) / max(args.members, 1)) + 1
    )
    if args.members < 1 or args.commands < args.members or per_member > PER_PERSON:
        parser.error(
            f"each member sends one warm-up and then up to {PER_PERSON - 1} commands a pass"
            " (Klimabot ignores more than 20 per person in 30 s): choose"
            " members <= commands <= 19 * members"
        )
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.seconds > 0 and not 0 < args.rate <= args.members:
        parser.error("in an open-loop pass each member sends at most one command a second")
    return args


def tick_seconds(values: list[str]) -> float:
    """Return the sum of clock ticks as seconds."""
    return sum(int(value) for value in values) / os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int | None) -> float:
    """Return the CPU time process ``pid`` used so far (Linux only, else 0)."""
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        # utime and stime, fields 14 and 15; the name in parentheses may hold spaces.
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return tick_seconds(stat[11:13])
    return 0.0


def usage(bot: int | None, synapse: int) -> Usage:
    """Return the CPU time of this process, the bot, Synapse and all processes."""
    own = os.times()
    machine = None
    with contextlib.suppress(OSError, ValueError):
        ticks = Path("/proc/stat").read_text().split()[1:9]
        # user nice system idle iowait irq softirq steal: all but idle and iowait is busy.
        machine = tick_seconds(ticks) - tick_seconds(ticks[3:5])
    return Usage(
        time.monotonic(),
        own.user + own.system,
        process_seconds(bot),
        process_seconds(synapse),
        machine,
    )


class Bot(ChildProcess):
    """Klimabot (`klimabot run`) or the echo bot in its own process, syncing with Synapse."""

    def __init__(self, kind: str, stage: Stage, profile: Path | None = None) -> None:
        super().__init__(kind, start_timeout=START_TIMEOUT, stop_timeout=STOP_TIMEOUT)
        self.stage, self.profile = stage, profile
        self.folder = stage.folder / kind

    @property
    def account(self) -> Account:
        """The bot's account on the homeserver."""
        return self.stage.accounts[self.kind]

    @staticmethod
    async def prepare(kind: str, stage: Stage) -> None:
        """Write Klimabot's config and demo database; the echo bot needs nothing."""
        if kind != "klimabot":
            return
        folder = stage.folder / kind
        folder.mkdir(parents=True, exist_ok=True)
        await klimabot_process(stage, folder).load_demo()

    def arguments(self) -> tuple[list[str], dict[str, str]]:
        """Return the interpreter's arguments and the secrets for the environment."""
        profile = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        if self.kind == "echo":
            script = [str(ROOT / "bench" / "matrix_echo_bot.py")]
            options = ["--homeserver", self.stage.synapse.url, "--user-id", self.account.user_id]
            options += ["--data-dir", str(self.folder / "matrix-data")]
            return [*profile, *script, *options], {ECHO_TOKEN: self.account.token}
        setup = klimabot_process(self.stage, self.folder)
        command = ["-m", "bot", "run", "--config", str(setup.config)]
        return [*profile, *command], setup.environment

    async def start(self) -> None:
        """Start the process and wait for its ready line on stderr."""
        self.folder.mkdir(parents=True, exist_ok=True)
        arguments, secrets_ = self.arguments()
        ready = KLIMABOT_READY if self.kind == "klimabot" else (ECHO_READY,)
        await self.launch(arguments, secrets_, ready)

    @property
    def pid(self) -> int | None:
        """The process id while the bot runs."""
        return self.process.pid if self.process is not None else None

    async def stop(self) -> None:
        """Stop the bot, then summarise the errors it logged."""
        await super().stop()
        errors = [line for line in self.log if " ERROR " in line]
        if errors:
            causes = {line for line in self.log if re.match(r"^[\w.]+(Error|Exception): ", line)}
            print(f"{self.kind} logged {len(errors)} errors: {'; '.join(sorted(causes))}")


def klimabot_process(stage: Stage, folder: Path) -> BotProcess:
    """Return the tests' bot process helper for the config (as test_matrix.py's matrix_bot)."""
    account = stage.accounts["klimabot"]
    sections = (
        f'matrix:\n  homeserver: {stage.synapse.url}\n  user_id: "{account.user_id}"\n'
        f"  data_dir: {folder / 'matrix-data'}\n"
    )
    return BotProcess(folder, sections, {"KLIMABOT_MATRIX_PASSWORD": account.password})


@contextlib.asynccontextmanager
async def running(bot: Bot) -> AsyncIterator[Bot]:
    """Run the bot for the duration of the block."""
    try:
        await bot.start()
        yield bot
    finally:
        await bot.stop()


def fits(kind: str) -> Callable[[str], bool]:
    """Return the check that a reply is the expected answer to COMMAND."""
    if kind == "echo":
        return lambda text: text == COMMAND
    return lambda text: text.startswith("Nächste Treffen")


async def limited(limit: asyncio.Semaphore, work: Awaitable[RoomID]) -> RoomID:
    """Await work while holding the semaphore."""
    async with limit:
        return await work


async def direct_chat(member: MatrixMember, kind: str, bot_user: str, encrypted: bool) -> RoomID:
    """Open a direct chat with the bot, wait until it joined and read Klimabot's greeting."""
    room = await member.create_dm(bot_user, encrypted=encrypted)
    await member.wait_joined(room, bot_user, within=SETUP_TIMEOUT)
    if kind == "klimabot":
        greeting = await member.next_message(room, sender=bot_user, within=SETUP_TIMEOUT)
        if greeting.encrypted != encrypted:
            raise RuntimeError(f"greeting in {room} encrypted={greeting.encrypted}")
    return room


async def set_up(stage: Stage, members: int, *, plain: bool) -> None:
    """Register the bots and members and open every direct chat while both bots run."""
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)
    for kind in KINDS:
        password = secrets.token_urlsafe(12)
        user_id, token, _device = await stage.synapse.register(f"bench-{kind}", password)
        stage.accounts[kind] = Account(user_id, password, token)
        await Bot.prepare(kind, stage)

    async def login(number: int) -> MatrixMember:
        async with limit:
            return await MatrixMember.login(stage.synapse, f"bench-member-{number:03d}")

    for task in asyncio.as_completed([login(n) for n in range(members)]):
        stage.members.append(await task)
    stage.members.sort(key=lambda member: member.user_id)
    bots = [Bot(kind, stage) for kind in KINDS]
    async with contextlib.AsyncExitStack() as stack:
        for bot in bots:
            await stack.enter_async_context(running(bot))
        for kind in KINDS:
            bot_user = stage.accounts[kind].user_id
            for encrypted in (True, False) if plain else (True,):
                stage.rooms[kind, encrypted] = list(
                    await asyncio.gather(
                        *(
                            limited(limit, direct_chat(member, kind, bot_user, encrypted))
                            for member in stage.members
                        )
                    )
                )
        await asyncio.sleep(SETTLE)


async def ask(
    member: MatrixMember,
    room: RoomID,
    count: int,
    bot_user: str,
    *,
    encrypted: bool,
    good: Callable[[str], bool],
    warm_up: bool = False,
) -> list[int]:
    """Send COMMAND ``count`` times, each as soon as the previous one was answered."""
    durations = []
    for _ in range(count):
        started = time.perf_counter_ns()
        # The warm-up makes sure the bot's device keys are known; timed sends skip the check.
        await member.send_text(room, COMMAND, wait_for_devices=warm_up)
        reply = await member.next_message(room, sender=bot_user, within=REPLY_TIMEOUT)
        durations.append(time.perf_counter_ns() - started)
        if not good(reply.body) or reply.encrypted != encrypted or reply.msgtype != "m.notice":
            raise RuntimeError(
                f"unexpected reply in {room} (encrypted={reply.encrypted}, {reply.msgtype}):"
                f" {reply.body[:200]!r}"
            )
    return durations


async def load(
    stage: Stage, kind: str, commands: int, *, encrypted: bool, warm_up: bool = False
) -> list[int]:
    """Let all members send their share of the commands at once (a closed loop each)."""
    members, rooms = stage.members, stage.rooms[kind, encrypted]
    shares = [
        commands // len(members) + (i < commands % len(members)) for i in range(len(members))
    ]
    bot_user = stage.accounts[kind].user_id
    good = fits(kind)
    done = await asyncio.gather(
        *(
            ask(member, room, share, bot_user, encrypted=encrypted, good=good, warm_up=warm_up)
            for member, room, share in zip(members, rooms, shares, strict=True)
        )
    )
    return [duration for durations in done for duration in durations]


async def ask_on_time(
    member: MatrixMember,
    room: RoomID,
    due: list[int],
    bot_user: str,
    *,
    encrypted: bool,
    good: Callable[[str], bool],
) -> list[int]:
    """Send COMMAND at each due time (perf_counter ns); time each answer from its due time."""
    durations = []
    for when in due:
        await asyncio.sleep(max(0.0, (when - time.perf_counter_ns()) / 1e9))
        await member.send_text(room, COMMAND, wait_for_devices=False)
        reply = await member.next_message(room, sender=bot_user, within=REPLY_TIMEOUT)
        durations.append(time.perf_counter_ns() - when)
        if not good(reply.body) or reply.encrypted != encrypted or reply.msgtype != "m.notice":
            raise RuntimeError(f"unexpected reply in {room}: {reply.body[:200]!r}")
    return durations


async def offer(
    stage: Stage, kind: str, rate: float, seconds: float, *, encrypted: bool
) -> list[int]:
    """Offer ``rate`` commands a second for ``seconds``, from the members in turn (open loop)."""
    members, rooms = stage.members, stage.rooms[kind, encrypted]
    start = time.perf_counter_ns() + 100_000_000
    due: list[list[int]] = [[] for _ in members]
    for i in range(round(rate * seconds)):
        due[i % len(members)].append(start + round(i * 1e9 / rate))
    bot_user = stage.accounts[kind].user_id
    good = fits(kind)
    done = await asyncio.gather(
        *(
            ask_on_time(member, room, times, bot_user, encrypted=encrypted, good=good)
            for member, room, times in zip(members, rooms, due, strict=True)
        )
    )
    return [duration for durations in done for duration in durations]


def access_log_size(stage: Stage) -> int:
    """Return the size of Synapse's log now, where the next pass's requests will begin."""
    with contextlib.suppress(OSError):
        return (stage.synapse.workdir / "homeserver.log").stat().st_size
    return 0


def path_template(path: str) -> str:
    """Return a request path with room, event and user ids and transaction ids left out."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if part[:1] in ("!", "$", "@") or part[:3] in ("%21", "%24", "%40"):
            parts[index] = "{id}"
        elif index >= 2 and parts[index - 2] in ("send", "sendToDevice"):
            parts[index] = "{txn}"
    return "/".join(parts).removeprefix("/_matrix/client")


def traffic_since(stage: Stage, offset: int, bot_user: str) -> Traffic:
    """Sum up Synapse's access log since offset: the bot's requests and the members'."""
    traffic = Traffic()
    with (
        contextlib.suppress(OSError),
        (stage.synapse.workdir / "homeserver.log").open("rb") as log,
    ):
        log.seek(offset)
        for raw in log:
            match = ACCESS_LINE.search(raw.decode(errors="replace"))
            if match is None or match["user"] == "None":
                continue
            who = "bot" if match["user"] == bot_user else "members"
            key = (who, f"{match['method']} {path_template(match['path'])}")
            traffic.count[key] += 1
            traffic.cpu[key] += float(match["user_cpu"]) + float(match["system_cpu"])
            traffic.size[key] += int(match["size"])
    return traffic


@dataclass(frozen=True, slots=True)
class Load:
    """What a pass sends: ``commands`` in a closed loop, or ``rate``/s for ``seconds``."""

    commands: int = 0
    rate: float = 0.0
    seconds: float = 0.0

    @property
    def mode(self) -> str:
        """Return closed or open."""
        return "open" if self.rate else "closed"


async def measure(
    stage: Stage, kind: str, work: Load, *, encrypted: bool, profile: Path | None
) -> Pass:
    """Start the bot afresh, warm up, then time the load."""
    synapse_pid = stage.synapse.process.pid
    async with running(Bot(kind, stage, profile)) as bot:
        # Warm-up: one command per member, so that keys are shared and caches are filled.
        await load(stage, kind, len(stage.members), encrypted=encrypted, warm_up=True)
        offset = access_log_size(stage)
        before = usage(bot.pid, synapse_pid)
        if work.rate:
            durations = await offer(stage, kind, work.rate, work.seconds, encrypted=encrypted)
        else:
            durations = await load(stage, kind, work.commands, encrypted=encrypted)
        after = usage(bot.pid, synapse_pid)
        await asyncio.sleep(SETTLE)
    wall = after.at - before.at
    own, bot_cpu = after.own - before.own, after.bot - before.bot
    synapse_cpu = after.synapse - before.synapse
    others = None
    if before.machine is not None and after.machine is not None:
        busy = after.machine - before.machine
        others = max(0.0, busy - own - bot_cpu - synapse_cpu) / wall
    return Pass(
        kind,
        encrypted,
        work.mode,
        len(stage.members),
        durations,
        wall,
        bot_cores=bot_cpu / wall,
        synapse_cores=synapse_cpu / wall,
        driver_cores=own / wall,
        others=others,
        traffic=traffic_since(stage, offset, stage.accounts[kind].user_id),
    )


def row(label: str, result: Pass) -> str:
    """Return one line of the table."""
    others = "" if result.others is None else f"{result.others:.2f}"
    return (
        f"{label:<26} {len(result.durations):>8} {result.members:>7} {result.seconds:>8.2f}"
        f" {result.rate:>10.1f} {result.percentile(50):>8.1f} {result.percentile(99):>8.1f}"
        f" {result.cpu_ms:>7.2f} {result.bot_cores:>5.2f} {result.synapse_cores:>7.2f}"
        f" {result.driver_cores:>6.2f} {others:>6}"
    )


def median(passes: list[Pass], figure: Callable[[Pass], float]) -> float:
    """Return the median of a figure over the passes."""
    return statistics.median(figure(p) for p in passes)


def print_traffic(passes: list[Pass]) -> None:
    """Print Synapse's requests and CPU per command in the last pass of each bot and mode."""
    print(
        "\nSynapse per command (its access log, last closed-loop pass of each): requests, CPU ms"
        " of the requests, KB answered"
    )
    for result in {p.label: p for p in passes if p.mode == "closed"}.values():
        traffic, commands = result.traffic, len(result.durations)
        attributed = sum(traffic.cpu.values()) * 1000 / commands
        process = result.synapse_cores * result.seconds * 1000 / commands
        print(
            f"  {result.label}: Synapse process {process:.1f} ms CPU, {attributed:.1f} ms of it"
            f" in {sum(traffic.count.values()) / commands:.2f} requests"
        )
        for key in sorted(traffic.cpu, key=lambda key: -traffic.cpu[key])[:SHOWN_REQUESTS]:
            who, request = key
            print(
                f"    {who:<7} {request:<50} {traffic.count[key] / commands:5.2f}"
                f" {traffic.cpu[key] * 1000 / commands:6.2f} ms"
                f" {traffic.size[key] / 1000 / commands:6.2f} KB"
            )


def print_table(passes: list[Pass]) -> None:
    """Print every pass, with the medians where a pass was repeated."""
    header = (
        f"{'pass':<26} {'commands':>8} {'members':>7} {'seconds':>8} {'commands/s':>10}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>7} {'bot':>5} {'synapse':>7} {'driver':>6}"
        f" {'others':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for label in dict.fromkeys(p.label for p in passes):
        mine = [p for p in passes if p.label == label]
        for number, result in enumerate(mine, 1):
            print(row(f"{label} #{number}" if len(mine) > 1 else label, result))
        if len(mine) > 1:
            print(
                f"{label + ' median':<26} {'':>8} {'':>7} {'':>8}"
                f" {median(mine, lambda p: p.rate):>10.1f}"
                f" {median(mine, lambda p: p.percentile(50)):>8.1f}"
                f" {median(mine, lambda p: p.percentile(99)):>8.1f}"
                f" {median(mine, lambda p: p.cpu_ms):>7.2f}"
            )
    print(
        "closed: each member sends the next command on the answer; open: commands offered at a"
        " fixed rate, timed from when each was due; cpu ms: the bot process's CPU time per"
        " command; bot, synapse, driver: cores the bot process, Synapse and this process (the"
        " members' clients) kept busy; others: cores all other processes kept busy (above about"
        " 0.2 the figures are inflated by contention for the cores)"
    )


def print_results(passes: list[Pass]) -> bool:
    """Print the passes, the CPU and throughput against the echo bot and the verdicts."""
    print_table(passes)
    print_traffic(passes)
    print()
    passed = True
    for encrypted in (True, False):
        rooms = "encrypted" if encrypted else "unencrypted"
        by_kind = {
            (kind, mode): [
                p for p in passes if p.bot == kind and p.encrypted == encrypted and p.mode == mode
            ]
            for kind in KINDS
            for mode in ("closed", "open")
        }
        closed_k, closed_e = by_kind["klimabot", "closed"], by_kind["echo", "closed"]
        if closed_k and closed_e:
            cpu_k, cpu_e = (
                median(closed_k, lambda p: p.cpu_ms),
                median(closed_e, lambda p: p.cpu_ms),
            )
            rate_k, rate_e = median(closed_k, lambda p: p.rate), median(closed_e, lambda p: p.rate)
            print(
                f"{rooms} rooms, closed loop: CPU per command Klimabot {cpu_k:.2f} ms, echo bot"
                f" {cpu_e:.2f} ms ({cpu_k - cpu_e:+.2f}); throughput {rate_k:.1f} against"
                f" {rate_e:.1f} commands/s ({rate_k / rate_e:.0%}, for information)"
            )
        open_k, open_e = by_kind["klimabot", "open"], by_kind["echo", "open"]
        if open_k and open_e:
            p99_k = median(open_k, lambda p: p.percentile(99))
            p99_e = median(open_e, lambda p: p.percentile(99))
            cpu_k, cpu_e = median(open_k, lambda p: p.cpu_ms), median(open_e, lambda p: p.cpu_ms)
            ok = p99_k <= P99_RATIO * p99_e
            passed &= ok
            rate = len(open_k[0].durations) / open_k[0].seconds
            p50_k = median(open_k, lambda p: p.percentile(50))
            p50_e = median(open_e, lambda p: p.percentile(50))
            print(
                f"{rooms} rooms, {rate:.1f} commands/s offered: p99 Klimabot {p99_k:.0f} ms,"
                f" echo bot {p99_e:.0f} ms ({p99_k / p99_e:.2f}x, target <= {P99_RATIO:g}x):"
                f" {'PASS' if ok else 'FAIL'}; p50 {p50_k:.0f} against {p50_e:.0f} ms; CPU per"
                f" command"
                f" {cpu_k:.2f} against {cpu_e:.2f} ms"
            )
    return passed


def profile_path(folder: Path | None, kind: str, encrypted: bool, number: int) -> Path | None:
    """Return where this pass's bot writes its cProfile stats, if profiling."""
    if folder is None:
        return None
    return folder / f"{kind}-{'e2e' if encrypted else 'plain'}-{number}.prof"


async def run(args: argparse.Namespace, synapse: Synapse, scratch: Path) -> bool:
    """Set up the members' chats; closed-loop passes alternating, then the open-loop ones."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    stage = Stage(synapse, scratch, {})
    plain = args.plain_commands > 0
    plan: list[tuple[str, bool, Load, int]] = []
    for number in range(1, args.rounds + 1):
        plan += [(kind, True, Load(args.commands), number) for kind in KINDS]
    if plain:
        plan += [(kind, False, Load(args.plain_commands), 1) for kind in KINDS]
    if args.seconds > 0:
        offered = Load(rate=args.rate, seconds=args.seconds)
        for number in range(1, args.rounds + 1):
            plan += [(kind, True, offered, number) for kind in KINDS]
        if plain:
            plan += [(kind, False, offered, 1) for kind in KINDS]
    try:
        started = time.monotonic()
        print(f"setting up {args.members} members and their direct chats ...", flush=True)
        await set_up(stage, args.members, plain=plain)
        print(f"set up in {time.monotonic() - started:.1f} s", flush=True)
        passes = []
        for kind, encrypted, work, number in plan:
            what = (
                f"{work.commands} commands"
                if not work.rate
                else (f"{work.rate:g}/s for {work.seconds:g} s")
            )
            rooms = "encrypted" if encrypted else "unencrypted"
            print(f"{kind}, {rooms}, {what} ...", flush=True)
            profile = None
            if work.mode == "closed":
                profile = profile_path(args.profile, kind, encrypted, number)
            passes.append(await measure(stage, kind, work, encrypted=encrypted, profile=profile))
    finally:
        for member in stage.members:
            with contextlib.suppress(Exception):
                await member.close()
    return print_results(passes)


def terminated(signum: int, _frame: object) -> None:
    """Turn SIGTERM outside the event loop into an exit that still runs the clean-up."""
    raise SystemExit(128 + signum)


def main() -> None:
    """Run the benchmark; exit with status 1 when a target is missed."""
    args = parse_args()
    signal.signal(signal.SIGTERM, terminated)
    # The members' clients warn about every device that is not cross-signed: none is.
    logging.basicConfig(
        level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.profile:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    print(f"code: {code_version()}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores (may use CPU"
        f" {','.join(map(str, usable)) or '?'}), Python {platform.python_version()},"
        f" mautrix {version('mautrix')}, Synapse {SYNAPSE_VERSION}"
    )
    print(
        f"workload: {args.members} members, {COMMAND} in a direct chat each; closed loop"
        f" {args.commands} commands per pass, open loop {args.rate:g}/s for {args.seconds:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as folder:
        scratch = Path(folder)
        # Started outside the event loop: a start cancelled half-way in a thread would leak it.
        synapse = Synapse.launch(scratch / "synapse")
        try:
            passed = asyncio.run(run(args, synapse, scratch))
        except (asyncio.CancelledError, KeyboardInterrupt):
            print("interrupted; stopping everything", file=sys.stderr)
            passed = None
        finally:
            synapse.terminate()
    raise SystemExit(130 if passed is None else 0 if passed else 1)


if __name__ == "__main__":
    main()
