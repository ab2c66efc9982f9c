"""Command routers: each handler module registers its commands with their help line."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import Reply, Request, Role
from storage.models import Base, Member


@dataclass(slots=True)
class Lifetime:
    """Until when a reply stays true if the data it shows does not change (None: for ever)."""

    until: dt.datetime | None = None

    def ends(self, moment: dt.datetime | None) -> None:
        """Note a moment from which the reply will read differently, such as a meeting's end."""
        if moment is not None and (self.until is None or moment < self.until):
            self.until = moment


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler works with besides the request: one unit of work and its member."""

    session: AsyncSession
    member: Member
    role: Role
    network: str
    now: dt.datetime
    commands: Sequence[Command] = ()
    lifetime: Lifetime = field(default_factory=Lifetime)


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
    same_for_all: tuple[str, ...] | None = None


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
        same_for_all: Sequence[type[Base]] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``/name``; help and usage are N_() marked.

        ``group=False`` keeps a personal command (such as /join) out of group chats unless
        it is addressed to the bot by name.

        ``same_for_all`` names the models a reply is made of when it is the same for every
        member who asks in the same language and role: dispatch may then answer the same
        request from memory until one of those tables changes or the reply's lifetime ends.
        """
        tables = (
            None
            if same_for_all is None
            else tuple(sorted({m.__tablename__ for m in same_for_all}))
        )

        def register(handler: Handler) -> Handler:
            usage_line = usage or f"/{name}"
            self.commands.append(
                Command(name, handler, help, usage_line, role, aliases, group, tables)
            )
            return handler

        return register
