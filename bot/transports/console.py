"""The console transport: one message a line from stdin, replies as plain text on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.core import ChatId, MessageRef, Platform, Recipient, Reply, Request, Sender, UserId
from bot.markup import to_plain
from bot.transports import RequestHandler

logger = logging.getLogger(__name__)

COMMAND = re.compile(r"^[/!](?P<command>[^\s@]+)(?:@\S+)?(?:\s+(?P<args>.*))?$", re.DOTALL)
CHAT = ChatId("console")
HISTORY_LENGTH = 1000
# Terminal control: escape sequences (CSI, OSC, DCS and the like, 7- and 8-bit) and every other
# C0 or C1 control character but newline and tab. Text from members must not clear, retitle or
# otherwise drive the operator's terminal.
TERMINAL_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[PX^_][^\x1b\x9c\n]*(?:\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


class InputFailed(Exception):
    """The console's input cannot be read any more; the message says why."""


def parse_line(line: str, sender: Sender) -> Request:
    """Turn a typed line into a request; text that is no command has an empty command."""
    match = COMMAND.match(line.strip())
    command, args = (match["command"], match["args"] or "") if match else ("", line.strip())
    return Request(Platform.CONSOLE, CHAT, sender, command, args.strip())


def printable(text: str) -> str:
    """Return text without terminal escape sequences and control characters (but \\n, \\t)."""
    return TERMINAL_CONTROL.sub("", text)


class ConsoleTransport:
    """Talk to the bot in a terminal or through a pipe, as the operator's own member."""

    platform = Platform.CONSOLE

    def __init__(
        self,
        handle: RequestHandler,
        *,
        stdin: TextIO,
        stdout: TextIO,
        user_id: str = "local",
        files: Path = Path("klimabot-files"),
        history: Path | None = None,
    ) -> None:
        self.handle = handle
        self.stdin, self.stdout = stdin, stdout
        self.sender = Sender(UserId(user_id), display_name=user_id)
        self.files = files
        self.history = history
        self.interactive = stdin.isatty()
        self._printed = 0

    async def start(self) -> None:
        """Read and answer lines until the input ends; raise InputFailed if it cannot be read."""
        reconfigure = getattr(self.stdin, "reconfigure", None)
        if reconfigure is not None:
            # Bytes that are not text in the locale's encoding become U+FFFD, not an error.
            reconfigure(errors="replace")
        remember = _line_editing(self.history) if self.interactive else None
        answered = threading.Event()
        lines = self._read_lines(answered, remember)
        while (line := await lines.get()) is not None:
            if isinstance(line, BaseException):
                raise InputFailed(str(line) or type(line).__name__) from line
            if line.strip():
                reply = await self.handle(parse_line(line, self.sender))
                if reply is not None:
                    self._print(reply)
            answered.set()

    def _read_lines(
        self, answered: threading.Event, remember: Callable[[str], None] | None
    ) -> asyncio.Queue[str | BaseException | None]:
        # A daemon thread, not the loop's executor: a blocking read must not keep the
        # process alive after Ctrl-C.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()

        def put(item: str | BaseException | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def read() -> None:
            try:
                while (line := self._read_line()) is not None:
                    put(line)
                    if remember is not None:
                        remember(line)
                    if self.interactive:
                        # The next prompt comes after the answer, not in the middle of it.
                        answered.wait()
                        answered.clear()
            except Exception as error:
                put(error)
            else:
                put(None)

        threading.Thread(target=read, name="console-input", daemon=True).start()
        return queue

    def _read_line(self) -> str | None:
        """Return the next line (an empty one too), or None at the end of the input."""
        if self.interactive:
            try:
                return input("> ")
            except EOFError:
                return None
        return self.stdin.readline() or None

    async def stop(self) -> None:
        """Nothing to release: the console ends with its input."""

    async def send(self, recipient: Recipient, reply: Reply, *, key: str) -> MessageRef:
        """Print a pushed message as it arrives."""
        self._print(reply)
        self._printed += 1
        return MessageRef(str(self._printed))

    def hold(self, seconds: float) -> None:
        """Nothing to hold: the console has no limits."""

    async def edit(self, recipient: Recipient, message: MessageRef, reply: Reply) -> None:
        """Print the new version of a message: a terminal cannot change what it showed."""
        self._print(reply)

    def _print(self, reply: Reply) -> None:
        """Print a reply as plain text, buttons as commands to type, files as saved paths."""
        self.stdout.write(self.render(reply) + "\n\n")
        self.stdout.flush()

    def render(self, reply: Reply) -> str:
        """Return a reply as the console shows it, with nothing that drives a terminal."""
        parts = [to_plain(reply.text)]
        hints = [
            f"  [{button.label}] {button.command_line}" for row in reply.buttons for button in row
        ]
        if hints:
            parts.append("\n".join(hints))
        for attachment in reply.attachments:
            # One folder the person can find again; a file of the same name is replaced.
            self.files.mkdir(parents=True, exist_ok=True)
            path = self.files / Path(attachment.filename).name
            path.write_bytes(attachment.data)
            parts.append(f"📎 {path}")
        return printable("\n".join(parts))


def _line_editing(history: Path | None) -> Callable[[str], None] | None:
    """Give input() line editing and, with a history file, the lines of earlier chats.

    Return what keeps a typed line in the history file, or None where there is none.
    """
    try:
        readline = importlib.import_module("readline")
    except ImportError:  # Python built without it, e.g. on Windows
        return None
    if history is None:
        return None
    try:
        history = history.expanduser()
        os.close(os.open(history, os.O_CREAT | os.O_WRONLY, 0o600))
        history.chmod(0o600)
        readline.read_history_file(history)
        readline.set_history_length(HISTORY_LENGTH)
        readline.write_history_file(history)  # at most HISTORY_LENGTH lines stay
    except (OSError, RuntimeError) as error:  # RuntimeError: no home folder to expand "~"
        logger.info("console: no history in %s (%s)", history, error)
        return None

    def remember(line: str) -> None:
        if line.strip():
            with contextlib.suppress(OSError):
                readline.append_history_file(1, history)

    return remember
