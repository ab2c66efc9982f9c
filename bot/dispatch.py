"""Dispatch: one request in, one reply out, in one unit of work with the member's rights."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Collection
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import i18n
from bot.core import Platform, Reply, Request, Role, UserError, UserId
from bot.i18n import _
from bot.markup import code, shorten
from bot.memory import Memory, Person, ReplyKey
from bot.routing import Command, Context, Router
from storage.changes import Changes
from storage.members import NAME_LIMIT, member_for
from storage.models import Member, utcnow

logger = logging.getLogger(__name__)
# Longer arguments (a pasted text) are answered each time, not remembered.
MAX_REMEMBERED_ARGS = 200

ROLE_REFUSALS = {
    Role.PARTNER: i18n.N_(
        "{command} is for partner representatives. "
        "Ask a coordinator for an invite code and use /join CODE."
    ),
    Role.COORDINATOR: i18n.N_("{command} is for the network's coordinators."),
}


class RateLimiter:
    """Allow each person a number of commands in a sliding window (kept in memory only)."""

    def __init__(self, limit: int = 20, window: float = 30.0) -> None:
        self.limit, self.window = limit, window
        self._seen: defaultdict[tuple[Platform, UserId], deque[float]] = defaultdict(deque)

    def allow(self, platform: Platform, user_id: UserId) -> bool:
        """Record a command and tell whether it is within the person's allowance."""
        now = time.monotonic()
        seen = self._seen[(platform, user_id)]
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        seen.append(now)
        return len(seen) <= self.limit


class Dispatcher:
    """Route requests to the included routers' handlers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        network: str,
        language: str,
        timezone: ZoneInfo,
        coordinators: Collection[tuple[Platform, str]] = (),
        rate_limiter: RateLimiter | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        changes: Changes | None = None,
    ) -> None:
        self.sessions = sessions
        self.network = network
        self.language = language
        self.timezone = timezone
        self.coordinators = frozenset(coordinators)
        self.rate_limiter = rate_limiter or RateLimiter()
        self.clock = clock
        # Without the engine's changes nothing can be known to be current: no memory.
        self.memory = Memory(changes) if changes is not None else None
        self._commands: dict[str, Command] = {}

    def include_routers(self, *routers: Router) -> None:
        """Make the routers' commands available, refusing a name registered twice."""
        for router in routers:
            for command in router.commands:
                for name in (command.name, *command.aliases):
                    if name in self._commands:
                        raise ValueError(f"/{name} is registered twice")
                    self._commands[name] = command

    def commands_for(self, role: Role) -> list[Command]:
        """Return the commands a role may use, each once, in registration order."""
        unique = {id(command): command for command in self._commands.values()}
        return [command for command in unique.values() if command.role <= role]

    def role_of(self, platform: Platform, user_id: str, partner_id: int | None) -> Role:
        """Return what a member may do: coordinators by config, partners by invite."""
        if (platform, user_id) in self.coordinators:
            return Role.COORDINATOR
        return Role.PARTNER if partner_id is not None else Role.MEMBER

    def localizer(self, language: str | None) -> i18n.Localizer:
        """Return the localizer for a member's language, or the network's default."""
        return i18n.localizer(language or self.language, self.timezone)

    async def handle(self, request: Request) -> Reply | None:
        """Answer one request; None means staying silent (e.g. in a group)."""
        command = self._commands.get(request.command.lower())
        if command is None and request.is_group:
            return None
        if not self.rate_limiter.allow(request.platform, request.sender.user_id):
            return None
        now = self.clock()
        if command is not None:
            remembered = self._remembered(request, command, now)
            if remembered is not None:
                return remembered
        people_stamp = self.memory.people_stamp() if self.memory else ()
        async with self.sessions() as session:
            member, created = await member_for(
                session,
                request.platform,
                request.sender.user_id,
                display_name=request.sender.display_name,
                language=_supported(request.sender.language_code),
            )
            if created:
                # The member exists from now on, whatever becomes of the command.
                await session.commit()
            if self.memory is not None:
                self.memory.remember_person(
                    request.platform, request.sender.user_id, _person(member), people_stamp
                )
            role = self.role_of(request.platform, request.sender.user_id, member.partner_id)
            with i18n.using(self.localizer(member.language)):
                if command is None:
                    return _unknown(request)
                if command.role > role:
                    refusal = _(ROLE_REFUSALS[command.role]).format(command=f"/{command.name}")
                    return Reply(Markup.escape(refusal), is_error=True)
                language = i18n.current().language
                remembered = self._remembered_reply(
                    request, command, language, role, member_id=member.id, now=now
                )
                if remembered is not None:
                    await session.commit()  # a new name, or reachable again
                    return remembered
                context = Context(
                    session, member, role, self.network, now, self.commands_for(role)
                )
                return await self._run(command, request, context)

    def _reply_key(
        self, request: Request, command: Command, language: str, role: Role, member_id: int
    ) -> ReplyKey | None:
        if len(request.args) > MAX_REMEMBERED_ARGS:
            return None
        return ReplyKey(
            command.name,
            request.args.strip(),
            language,
            role,
            request.via_button,
            member_id if command.per_member else None,
        )

    def _remembered(self, request: Request, command: Command, now: dt.datetime) -> Reply | None:
        """Answer from memory: a known person asking what was answered the same for all."""
        if self.memory is None or command.same_for_all is None:
            return None
        sender = request.sender
        person = self.memory.person(request.platform, sender.user_id, now)
        if person is None:
            return None
        if sender.display_name and person.display_name != sender.display_name[:NAME_LIMIT]:
            return None  # the database learns the new name
        role = self.role_of(request.platform, sender.user_id, person.partner_id)
        if command.role > role:
            return None
        language = self.localizer(person.language).language
        return self._remembered_reply(
            request, command, language, role, member_id=person.member_id, now=now
        )

    def _remembered_reply(
        self,
        request: Request,
        command: Command,
        language: str,
        role: Role,
        *,
        member_id: int,
        now: dt.datetime,
    ) -> Reply | None:
        """Return the reply given before to the same request in this language and role."""
        if self.memory is None or command.same_for_all is None:
            return None
        key = self._reply_key(request, command, language, role, member_id)
        return None if key is None else self.memory.reply(key, command.same_for_all, now)

    async def _run(self, command: Command, request: Request, context: Context) -> Reply:
        tables = command.same_for_all
        stamp = self.memory.reply_stamp(tables) if self.memory and tables is not None else None
        try:
            reply = await command.handler(request, context)
            await context.session.commit()
        except UserError as error:
            await context.session.rollback()
            return _user_error(error, command)
        except Exception:
            await context.session.rollback()
            ref = secrets.token_hex(3).upper()
            logger.exception("/%s failed (ref: %s)", command.name, ref)
            return Reply(
                Markup.escape(
                    _("Sorry, that went wrong on my side (ref: {ref}). Please try again later.")
                ).format(ref=ref),
                is_error=True,
            )
        if self.memory is not None and stamp is not None and not reply.is_error:
            key = self._reply_key(
                request, command, i18n.current().language, context.role, context.member.id
            )
            if key is not None:
                self.memory.remember_reply(key, reply, stamp, context.now, context.lifetime.until)
        return reply


def _person(member: Member) -> Person:
    return Person(member.id, member.display_name, member.language, member.partner_id)


def _supported(language_code: str | None) -> str | None:
    language = (language_code or "").split("-")[0].lower()
    return language if language in i18n.LANGUAGES else None


def _unknown(request: Request) -> Reply:
    if request.via_button:
        # Forged, or from a version of the bot that had other buttons.
        text = _("This button no longer works. Please send the command again.")
        return Reply(Markup.escape(text), is_error=True)
    if not request.command:
        return Reply(
            Markup(
                _("Commands start with a slash, for example {example}. {help} lists them.")
            ).format(example=code("/meetings"), help=code("/help")),
            is_error=True,
        )
    name = shorten(request.command, 40)
    return Reply(
        Markup(_("I do not know the command {command}. {help} lists what I can do.")).format(
            command=code(f"/{name}"), help=code("/help")
        ),
        is_error=True,
    )


def _user_error(error: UserError, command: Command) -> Reply:
    message = Markup.escape(error.message)
    if not error.show_usage:
        return Reply(message, is_error=True)
    usage = Markup(_("Usage: {usage}")).format(usage=code(command.usage_line()))
    return Reply(message + Markup("\n") + usage, is_error=True)
