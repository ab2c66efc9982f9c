"""Command routers: each handler module registers its commands with their help line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import QuietHours, Reply, Request, Role
from storage.models import Member


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler works with besides the request: one unit of work and its member."""

    session: AsyncSession
    member: Member
    role: Role
    network: str
    now: dt.datetime
    commands: Sequence[Command] = ()
    quiet_hours: QuietHours | None = None
    reminder_offsets: tuple[int, ...] = ()  # the network's default, in minutes


Handler = Callable[[Request, Context], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Command:
    """A command: its name, what it does (for /help), how to call it and who may."""

    name: str
    handler: Handler
    help: str
    usage: str
    role: Role = Role.MEMBER
    aliases: tuple[str, ...] = ()
    group: bool = True


@dataclass(slots=True)
class Router:
    """The commands of one handler module, included explicitly by the wiring."""

    name: str
    commands: list[Command] = field(default_factory=list)

    def command(
        self,
        name: str,
        *,
        help: str,
        usage: str = "",
        role: Role = Role.MEMBER,
        aliases: tuple[str, ...] = (),
        group: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``/name``; help and usage are N_() marked.

        ``group=False`` keeps a personal command (such as /join) out of group chats unless
        it is addressed to the bot by name.
        """

        def register(handler: Handler) -> Handler:
            usage_line = usage or f"/{name}"
            self.commands.append(Command(name, handler, help, usage_line, role, aliases, group))
            return handler

        return register
