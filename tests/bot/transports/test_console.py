"""The console transport: lines in, plain text out, buttons as commands, files saved."""

import io
from pathlib import Path

import pytest

from bot.core import Platform, Sender, UserId
from bot.dispatch import Dispatcher
from bot.transports.console import ConsoleTransport, parse_line

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
