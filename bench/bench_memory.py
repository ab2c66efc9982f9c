"""Measure the resident memory of `klimabot run` with Telegram and Matrix on the large database."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_commands import TELEGRAM_IDS, Sizes, prepared_database  # noqa: E402
from common import ChildProcess, code_version  # noqa: E402
from mautrix.types import RoomID  # noqa: E402

from tests.matrix_member import MatrixMember  # noqa: E402
from tests.synapse import SYNAPSE_VERSION, Synapse  # noqa: E402
from tests.telegram_peer import Limits, PeerUser, TelegramPeer  # noqa: E402

TOKEN = "123456:BENCH"
BOT_USERNAME = "KlimaTestBot"
HIGH = 100_000  # the bot's send limits: the warm-up measures memory, not Telegram's pace
TARGET_MB = 250.0  # peak resident memory of the bot process
# What the warm-up sends, in turn: lists, a member's own answer and searches of every size.
COMMANDS = (
    "meetings",
    "meeting 1",
    "tips Wärmepumpe",
    "tips Photovoltaik",
    "tips Kosten",
    "tips Einsparung",
    "tips energy",
    "tips",
)
# Dispatch allows each person 20 commands in 30 s; everyone here stays below.
PER_PERSON = 20
READY = ("Klimabot läuft", "Klimabot is running")
REPLY_TIMEOUT = 60.0
START_TIMEOUT = 60.0
STATUS_FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def parse_args() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=40, help="Telegram users in the warm-up")
    parser.add_argument(
        "--commands", type=int, default=320, help="Telegram commands in the warm-up, in all"
    )
    parser.add_argument("--members", type=int, default=4, help="Matrix members in the warm-up")
    parser.add_argument(
        "--matrix-commands", type=int, default=40, help="Matrix commands in the warm-up, in all"
    )
    args = parser.parse_args()
    per_user = -(-args.commands // max(args.users, 1))
    per_member = -(-args.matrix_commands // max(args.members, 1))
    if args.users < 1 or args.members < 1 or max(per_user, per_member) >= PER_PERSON:
        parser.error(f"each user and member may send fewer than {PER_PERSON} commands")
    return args


def memory(pid: int | str) -> dict[str, float]:
    """Return the process's VmRSS, VmHWM, RssAnon and RssFile in MB (from /proc)."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in STATUS_FIELDS:
            figures[name] = int(value.split()[0]) / 1024
    return figures


def import_baseline() -> dict[str, float]:
    """Return the memory of a bare interpreter that imported bot.app, and nothing else."""
    script = "import bot.app, pathlib; print(pathlib.Path('/proc/self/status').read_text())"
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    figures = {}
    for line in output.splitlines():
        name, _, value = line.partition(":")
        if name in STATUS_FIELDS:
            figures[name] = int(value.split()[0]) / 1024
    return figures


class Klimabot(ChildProcess):
    """`klimabot run` with both transports, on a copy of the benchmark database."""

    async def start(
        self, folder: Path, peer: TelegramPeer, synapse: Synapse, password: str
    ) -> None:
        """Write the config and start the process."""
        config = folder / "config.yaml"
        config.write_text(
            f"database:\n  url: sqlite+aiosqlite:///{folder / 'klimabot.db'}\n"
            f"telegram:\n  base_url: {peer.base_url}\n  mode: polling\n  limits:\n"
            f"    messages_per_second: {HIGH}\n"
            f"    private_chat_messages_per_second: {HIGH}\n"
            f"    group_messages_per_minute: {HIGH}\n"
            f"matrix:\n  homeserver: {synapse.url}\n  user_id: '@klimabot:{synapse.server_name}'\n"
            f"  data_dir: {folder / 'matrix-data'}\n",
            encoding="utf-8",
        )
        secrets = {"KLIMABOT_TELEGRAM_TOKEN": TOKEN, "KLIMABOT_MATRIX_PASSWORD": password}
        await self.launch(["-m", "bot", "run", "--config", str(config)], secrets, READY)


def check(command: str, reply: str) -> None:
    """Refuse a reply that is an error or the request to slow down, not the command's answer."""
    if "(ref: " in reply or "antworte ich wieder" in reply:
        raise RuntimeError(f"unexpected reply to {command}: {reply[:200]!r}")


async def telegram_user(peer: TelegramPeer, user: PeerUser, commands: list[str]) -> None:
    """Send the commands one after the other, each on the answer to the previous one."""
    for command in commands:
        await user.send(f"/{command}")
        check(command, (await peer.wait_for(user.id, timeout=REPLY_TIMEOUT)).text)


async def matrix_member(member: MatrixMember, room: RoomID, bot: str, commands: list[str]) -> None:
    """Send the commands in the direct chat, each on the answer to the previous one."""
    for command in commands:
        await member.send_text(room, f"!{command}")
        check(command, (await member.next_message(room, sender=bot, within=REPLY_TIMEOUT)).body)


async def direct_chat(member: MatrixMember, bot: str) -> RoomID:
    """Open an encrypted direct chat with the bot and read its greeting."""
    room = await member.create_dm(bot)
    await member.wait_joined(room, bot, within=REPLY_TIMEOUT)
    await member.next_message(room, sender=bot, within=REPLY_TIMEOUT)
    return room


def shares(commands: int, people: int) -> list[list[str]]:
    """Deal the commands out to the people in turn, cycling through COMMANDS."""
    dealt: list[list[str]] = [[] for _ in range(people)]
    for index, command in zip(range(commands), itertools.cycle(COMMANDS), strict=False):
        dealt[index % people].append(command)
    return dealt


async def run(args: argparse.Namespace, synapse: Synapse, folder: Path, database: Path) -> bool:
    """Start the bot on a copy of the database, warm it up, read its memory."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    shutil.copyfile(database, folder / "klimabot.db")
    password = "bench-klimabot-password"
    bot_user, _token, _device = await synapse.register("klimabot", password)
    members = [
        await MatrixMember.login(synapse, f"bench-member-{n:03d}") for n in range(args.members)
    ]
    baseline = import_baseline()
    bot = Klimabot("klimabot", start_timeout=START_TIMEOUT)
    try:
        async with TelegramPeer(TOKEN, BOT_USERNAME) as peer:
            peer.limits = Limits(overall=None, private_chat=None, group_chat=None)
            await bot.start(folder, peer, synapse, password)
            assert bot.process is not None
            pid = bot.process.pid
            started = memory(pid)
            rooms = await asyncio.gather(*(direct_chat(m, bot_user) for m in members))
            # Existing members of the generated network, so that every lookup finds a row.
            users = [
                peer.user(TELEGRAM_IDS + n, f"Mitglied {n}") for n in range(1, args.users + 1)
            ]
            began = time.monotonic()
            await asyncio.gather(
                *(
                    telegram_user(peer, u, c)
                    for u, c in zip(users, shares(args.commands, args.users), strict=True)
                ),
                *(
                    matrix_member(m, r, bot_user, c)
                    for m, r, c in zip(
                        members, rooms, shares(args.matrix_commands, args.members), strict=True
                    )
                ),
            )
            seconds = time.monotonic() - began
            warm = memory(pid)
    finally:
        await bot.stop()
        for member in members:
            with contextlib.suppress(Exception):
                await member.close()
    print(
        f"warm-up: {args.commands} Telegram commands from {args.users} users and"
        f" {args.matrix_commands} Matrix commands from {args.members} members (encrypted) in"
        f" {seconds:.1f} s, cycling through {', '.join(COMMANDS)}"
    )
    header = f"{'process':<40} " + " ".join(f"{name + ' MB':>10}" for name in STATUS_FIELDS)
    print()
    print(header)
    print("-" * len(header))
    for label, figures in (
        ("python -c 'import bot.app'", baseline),
        ("klimabot run, started", started),
        ("klimabot run, after the warm-up", warm),
    ):
        print(f"{label:<40} " + " ".join(f"{figures[n]:>10.1f}" for n in STATUS_FIELDS))
    print(
        "VmRSS: resident now; VmHWM: the peak; RssAnon: the process's own (heap, SQLite's page"
        " cache); RssFile: mapped files (the interpreter, libraries)"
    )
    peak = warm["VmHWM"]
    passed = peak <= TARGET_MB
    print(
        f"\npeak resident memory of klimabot run: {peak:.0f} MB (target <= {TARGET_MB:.0f} MB):"
        f" {'PASS' if passed else 'FAIL'}; {peak - baseline['VmHWM']:.0f} MB above the bare"
        f" import ({baseline['VmHWM']:.0f} MB)"
    )
    return passed


def main() -> None:
    """Run the benchmark; exit with status 1 when the target is missed."""
    args = parse_args()
    # The members' clients warn about every device that is not cross-signed: none is.
    logging.basicConfig(
        level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(f"code: {code_version()}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}, Synapse {SYNAPSE_VERSION}"
    )
    database, meta = asyncio.run(
        prepared_database(Sizes(100_000, 1_000, 10_000, 300), regenerate=False)
    )
    rows = ", ".join(f"{count} {table}" for table, count in meta["rows"].items())
    print(f"data: {rows}; {database.stat().st_size / 1e6:.0f} MB (a copy of {database.name})")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as scratch:
        folder = Path(scratch)
        synapse = Synapse.launch(folder / "synapse")
        try:
            passed = asyncio.run(run(args, synapse, folder, database))
        except (asyncio.CancelledError, KeyboardInterrupt):
            print("interrupted; stopping everything", file=sys.stderr)
            passed = None
        finally:
            synapse.terminate()
    raise SystemExit(130 if passed is None else 0 if passed else 1)


if __name__ == "__main__":
    main()
