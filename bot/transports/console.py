"""The console transport: one message a line from stdin, replies as plain text on stdout."""

from __future__ import annotations

import asyncio
import re
import tempfile
import threading
from pathlib import Path
from typing import TextIO

from bot.core import ChatId, MessageRef, Platform, Recipient, Reply, Request, Sender, UserId
from bot.markup import to_plain
from bot.transports import RequestHandler

COMMAND = re.compile(r"^[/!](?P<command>[^\s@]+)(?:@\S+)?(?:\s+(?P<args>.*))?$", re.DOTALL)
CHAT = ChatId("console")


def parse_line(line: str, sender: Sender) -> Request:
    """Turn a typed line into a request; text that is no command has an empty command."""
    match = COMMAND.match(line.strip())
    command, args = (match["command"], match["args"] or "") if match else ("", line.strip())
    return Request(Platform.CONSOLE, CHAT, sender, command, args.strip())


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
        files: Path | None = None,
    ) -> None:
        self.handle = handle
        self.stdin, self.stdout = stdin, stdout
        self.sender = Sender(UserId(user_id), display_name=user_id)
        self.files = files
        self.interactive = stdin.isatty()
        self._printed = 0

    async def start(self) -> None:
        """Read and answer lines until the input ends."""
        answered = threading.Event()
        lines = self._read_lines(answered)
        while (line := await lines.get()) is not None:
            if line.strip():
                reply = await self.handle(parse_line(line, self.sender))
                if reply is not None:
                    self._print(reply)
            answered.set()

    def _read_lines(self, answered: threading.Event) -> asyncio.Queue[str | None]:
        # A daemon thread, not the loop's executor: a blocking read must not keep the
        # process alive after Ctrl-C.
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def read() -> None:
            while True:
                try:
                    line = input("> ") if self.interactive else self.stdin.readline()
                except EOFError:
                    line = ""
                loop.call_soon_threadsafe(queue.put_nowait, line or None)
                if not line:
                    return
                if self.interactive:
                    # The next prompt comes after the answer, not in the middle of it.
                    answered.wait()
                    answered.clear()

        threading.Thread(target=read, name="console-input", daemon=True).start()
        return queue

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
        """Return a reply as the console shows it."""
        parts = [to_plain(reply.text)]
        hints = [
            f"  [{button.label}] {button.command_line}" for row in reply.buttons for button in row
        ]
        if hints:
            parts.append("\n".join(hints))
        for attachment in reply.attachments:
            folder = self.files or Path(tempfile.mkdtemp(prefix="klimabot-"))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / Path(attachment.filename).name
            path.write_bytes(attachment.data)
            parts.append(f"📎 {path}")
        return "\n".join(parts)
