"""What the benchmarks share: which code the figures belong to, and bots in child processes."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import signal
import subprocess
import sys
import time
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


class RoundTrips:
    """Figures of a measured pass, for a dataclass with durations (ns), seconds, bot_cores."""

    durations: list[int]
    seconds: float
    bot_cores: float

    @property
    def rate(self) -> float:
        """Return commands answered per second, from the first send to the last answer."""
        return len(self.durations) / self.seconds

    def percentile(self, p: int) -> float:
        """Return the p-th percentile round trip in milliseconds (nearest rank)."""
        ordered = sorted(self.durations)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] / 1e6

    @property
    def cpu_ms(self) -> float:
        """Return the bot process's CPU milliseconds per command."""
        return self.bot_cores * self.seconds * 1000 / len(self.durations)


# Linux prctl option: a signal for the child when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Let the kernel stop the child when the benchmark dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildProcess:
    """A bot under test in its own process: started, its stderr collected, stopped cleanly."""

    def __init__(self, kind: str, *, start_timeout: float, stop_timeout: float = 30.0) -> None:
        self.kind = kind
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    async def launch(
        self, arguments: list[str], secrets: dict[str, str], ready: tuple[str, ...]
    ) -> None:
        """Run the interpreter with the arguments and wait for a ready line on stderr."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("KLIMABOT_")}
        environment.update({**secrets, "LANG": "C.UTF-8", "LC_ALL": ""})
        self.log.clear()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *arguments,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment,
            preexec_fn=die_with_parent,
        )
        self._reader = asyncio.create_task(self._read())
        deadline = time.monotonic() + self.start_timeout
        while not any(word in line for line in self.log for word in ready):
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start:\n" + "\n".join(self.log))
            await asyncio.sleep(0.05)

    async def _read(self) -> None:
        """Collect stderr lines, so that the pipe never fills up."""
        assert self.process is not None
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.log.append(line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """Send SIGTERM, wait, kill if it does not end; complain about an unclean exit."""
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            await self._reader
        if process.returncode != 0:
            tail = "\n".join(self.log[-20:])
            print(f"{self.kind} exited with status {process.returncode}:\n{tail}", flush=True)


def _ticks(values: list[str]) -> float:
    return sum(int(value) for value in values) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Return the CPU seconds process ``pid`` used so far (Linux; 0 when unknown)."""
    try:
        # utime and stime, fields 14 and 15; the name in parentheses may hold spaces.
        stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return _ticks(stat[11:13])
    except (OSError, ValueError, IndexError):
        return 0.0


class CpuMeter:
    """The cores that processes other than ours kept busy between ``start`` and ``others``."""

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self._before: tuple[float, float, dict[int, float]] | None = None

    @staticmethod
    def _machine() -> float:
        try:
            ticks = Path("/proc/stat").read_text().split()[1:9]
        except OSError:
            return math.nan
        # user nice system idle iowait irq softirq steal: all but idle and iowait is busy.
        return _ticks(ticks) - _ticks(ticks[3:5])

    def start(self, *pids: int) -> None:
        """Begin measuring; ``pids`` (and this process) are ours."""
        self.pids = {os.getpid(), *pids}
        self._before = (
            time.monotonic(),
            self._machine(),
            {pid: process_cpu(pid) for pid in self.pids},
        )

    def others(self) -> float:
        """Return the cores everyone else kept busy since ``start``, on average."""
        if self._before is None:
            return math.nan
        started, machine, ours = self._before
        wall = time.monotonic() - started
        own = sum(process_cpu(pid) - ours[pid] for pid in self.pids)
        return max(0.0, (self._machine() - machine - own) / wall) if wall > 0 else math.nan

    def cores(self, pid: int) -> float:
        """Return the cores process ``pid`` kept busy since ``start``."""
        if self._before is None or pid not in self._before[2]:
            return math.nan
        wall = time.monotonic() - self._before[0]
        return (process_cpu(pid) - self._before[2][pid]) / wall if wall > 0 else math.nan
