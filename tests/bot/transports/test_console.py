"""The console transport: lines in, plain text out, buttons as commands, files saved."""

import io
import os
import pty
import re
import select
import socket
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Platform, Sender, UserId
from bot.dispatch import Dispatcher
from bot.transports.console import ConsoleTransport, parse_line, printable
from storage.models import Category, Tip

SENDER = Sender(UserId("local"))


@pytest.mark.parametrize(
    ("line", "command", "args"),
    [
        ("/meetings", "meetings", ""),
        ("  /tips   Wärme pumpe \n", "tips", "Wärme pumpe"),
        ("!tips Wärme", "tips", "Wärme"),
        ("/meetings@KlimaBot #2", "meetings", "#2"),
        ("Hallo", "", "Hallo"),
        ("/", "", "/"),
    ],
)
def test_lines_become_requests(line: str, command: str, args: str) -> None:
    request = parse_line(line, SENDER)
    assert (request.platform, request.command, request.args) == (Platform.CONSOLE, command, args)


async def test_a_piped_conversation(demo: None, dispatcher: Dispatcher, tmp_path: Path) -> None:
    stdin = io.StringIO("/meeting 3\n\n/calendar 3\n/tip 2\n")
    stdout = io.StringIO()
    console = ConsoleTransport(dispatcher.handle, stdin=stdin, stdout=stdout, files=tmp_path)
    await console.start()
    replies = stdout.getvalue().split("\n\n  [")[0]
    assert replies.startswith("Online-Sprechstunde: Fördermittel für Wärmepumpen #3\n")
    out = stdout.getvalue()
    assert "  [✅ Ja] /rsvp 3 yes\n  [❔ Vielleicht] /rsvp 3 maybe" in out
    assert f"📎 {tmp_path / 'meeting-3.ics'}" in out
    assert (tmp_path / "meeting-3.ics").read_bytes().startswith(b"BEGIN:VCALENDAR")
    assert "Luft-Wasser-Wärmepumpe ersetzt Gaskessel #2" in out
    assert "<b>" not in out


def klimabot_chat(
    folder: Path, *, stdin: int | None = None, environment: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start the real `klimabot chat` in a folder of its own, reading the given stdin."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KLIMABOT_")}
    env.update(LANG="C.UTF-8", LC_ALL="", LANGUAGE="", HOME=str(folder), **(environment or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "chat"],
        stdin=stdin if stdin is not None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=folder,
        env=env,
    )


def test_undecodable_bytes_and_empty_lines_are_no_end(tmp_path: Path) -> None:
    # A strict decoder, as under a UTF-8 locale that is not C: a bad byte used to end the
    # reading thread and leave the chat hanging.
    chat = klimabot_chat(tmp_path, environment={"PYTHONIOENCODING": "utf-8:strict"})
    out, err = chat.communicate(b"/start\n\n\n\xff\xfeW\xe4rme\n\n/help\n", timeout=60)
    assert chat.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("Willkommen beim Klimabot")
    # The undecodable line was answered as text that is no command, then /help.
    assert text.index("Ihre Rolle") < text.index("Befehle beginnen") < text.rindex("Was ich kann")
    assert "\ufffd" not in out.decode()  # the bad bytes were read as U+FFFD, never shown


def test_files_are_saved_beside_the_database_and_no_temporary_folder_is_left(
    tmp_path: Path,
) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    chat = klimabot_chat(tmp_path, environment={"TMPDIR": str(temporary)})
    out, err = chat.communicate(b"/calendar\n/calendar 3\n/calendar\n", timeout=60)
    assert chat.returncode == 0, err.decode()
    files = tmp_path / "klimabot-files"
    assert out.decode().count(f"📎 {files / 'meetings.ics'}") == 2
    assert f"📎 {files / 'meeting-3.ics'}" in out.decode()
    assert sorted(path.name for path in files.iterdir()) == ["meeting-3.ics", "meetings.ics"]
    assert (files / "meetings.ics").read_bytes().startswith(b"BEGIN:VCALENDAR")
    assert list(temporary.iterdir()) == []


def test_a_failing_input_ends_the_chat_with_one_line(tmp_path: Path) -> None:
    # stdin is a connection whose other end resets it: reading fails, it does not just end.
    with socket.create_server(("127.0.0.1", 0)) as server:
        ours = socket.create_connection(server.getsockname())
        theirs, _address = server.accept()
    with ours, theirs:
        chat = klimabot_chat(tmp_path, stdin=theirs.fileno())
        ours.sendall(b"/start\n")
        assert chat.stdout is not None
        assert chat.stdout.readline().startswith(b"Willkommen beim Klimabot")
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _out, err = chat.communicate(timeout=60)
    lines = err.decode().splitlines()
    assert chat.returncode == 1
    assert lines[-1].startswith("klimabot: Die Eingabe kann nicht gelesen werden:"), lines
    assert not [line for line in lines if "Traceback" in line]


async def test_terminal_control_in_stored_text_never_reaches_the_terminal(
    demo: None, dispatcher: Dispatcher, session: AsyncSession
) -> None:
    title = "Neue \x1b[2J\x1b[HHeizung\x1b]0;gehackt\x07 im \x9b31mLager\x07\r"
    tip = Tip(partner_id=1, title=title, category=Category.HEAT, text="Text\x1bc mit\tTab")
    session.add(tip)
    await session.commit()
    stdout = io.StringIO()
    console = ConsoleTransport(
        dispatcher.handle, stdin=io.StringIO(f"/tip {tip.id}\n"), stdout=stdout
    )
    await console.start()
    out = stdout.getvalue()
    assert out.startswith("Neue Heizung im Lager")
    assert "Text mit\tTab" in out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", out)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[2Jb", "ab"),
        ("a\x1b[38;5;196mb\x1b[0m", "ab"),
        ("a\x1b]0;title\x07b", "ab"),
        ("a\x1b]8;;https://x.example\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
        ("a\x1bPq#0;2;0;0;0\x1b\\b", "ab"),
        ("a\x1bcb\x1b(Bc", "abc"),
        ("a\x9b2Jb\x9d0;t\x9cc", "abc"),
        ("a\rb\x08c\x07d\x00e\x7f", "abcde"),
        ("Zeile 1\n\tZeile 2 äöü € 😀", "Zeile 1\n\tZeile 2 äöü € 😀"),
    ],
)
def test_printable_text_keeps_only_what_prints(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_an_interactive_chat_edits_lines_and_recalls_earlier_ones(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    chat = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("KLIMABOT_")},
            "LANG": "C.UTF-8",
            "LC_ALL": "",
            "LANGUAGE": "",
            "HOME": str(tmp_path),
            "TERM": "xterm",
        },
        start_new_session=True,
    )
    os.close(follower)
    terminal = Terminal(leader)
    try:
        terminal.expect("Strg-D")
        terminal.expect("> ")
        terminal.type("/stx\x7fart\r")  # typed with a slip, corrected with backspace
        terminal.expect("Willkommen beim Klimabot")
        terminal.expect("> ")
        terminal.type("\r")  # an empty line just asks again
        terminal.expect("> ")
        terminal.type("/help\r")
        terminal.expect("Was ich kann")
        terminal.expect("> ")
        terminal.type("\x1b[A\x1b[A\r")  # up twice: /start again
        terminal.expect("Willkommen beim Klimabot")
        terminal.expect("> ")
        terminal.type("\x04")  # Ctrl-D
        assert chat.wait(timeout=30) == 0
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
        os.close(leader)
    history = tmp_path / ".klimabot_history"
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
    assert history.read_text(encoding="utf-8").split() == ["/start", "/help", "/start"]


class Terminal:
    """The operator's side of a pseudo-terminal: type keys, wait for text to appear."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = ""

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def expect(self, text: str, within: float = 30) -> None:
        """Wait until ``text`` appears, and consume what came up to its end."""
        deadline = time.monotonic() + within
        while text not in self.seen:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"{text!r} never appeared; the terminal shows:\n{self.seen}")
            self.seen += os.read(self.fd, 65536).decode(errors="replace")
        self.seen = self.seen[self.seen.index(text) + len(text) :]
