"""Command routers: each handler module registers its commands with their help line."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot import i18n
from bot.core import QuietHours, Reply, Request, Role
from storage.models import Member

# What Telegram accepts as a command name (and so what every platform gets).
COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


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
    # What calendar apps show as the length of a meeting without an end (None: no end).
    meeting_length: dt.timedelta | None = None
    # Where the private calendar feeds are served (ending in /calendar/), if anywhere.
    feed_url: str | None = None


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
    # (language, name) pairs: what menus and help call the command in that language.
    names: tuple[tuple[str, str], ...] = ()

    def name_in(self, language: str) -> str:
        """Return the name menus and help use in a language (the command's own by default)."""
        return dict(self.names).get(language, self.name)

    def usage_line(self) -> str:
        """Return the usage line in the current language, under the command's name there."""
        usage = i18n._(self.usage)
        local = self.name_in(i18n.current().language)
        own = f"/{self.name}"
        if local != self.name and (usage == own or usage.startswith(own + " ")):
            return f"/{local}{usage.removeprefix(own)}"
        return usage


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
        names: Mapping[str, str] | None = None,
        group: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler for ``/name``; help and usage are N_() marked.

        ``names`` gives the command's name per language (``{"de": "treffen"}``): menus and
        help show it to members of that language, and it answers like an alias for all.

        ``group=False`` keeps a personal command (such as /join) out of group chats unless
        it is addressed to the bot by name.
        """
        local = tuple(sorted((names or {}).items()))
        every_alias = tuple(dict.fromkeys((*aliases, *(alias for _, alias in local))))
        for each in (name, *every_alias):
            if not COMMAND_NAME.fullmatch(each):
                raise ValueError(f"/{each}: a command name is 1 to 32 of a-z, 0-9 and _")

        def register(handler: Handler) -> Handler:
            usage_line = usage or f"/{name}"
            self.commands.append(
                Command(
                    name,
                    handler,
                    help,
                    usage_line,
                    role,
                    every_alias,
                    group,
                    local,
                )
            )
            return handler

        return register
