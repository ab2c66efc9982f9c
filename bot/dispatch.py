"""Dispatch: one request in, one reply out, in one unit of work with the member's rights."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import secrets
from collections.abc import Callable, Collection
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import i18n
from bot.allowance import Allowance, Verdict
from bot.core import Platform, QuietHours, Reply, Request, Role, UserError
from bot.i18n import _
from bot.markup import code, shorten
from bot.routing import Command, Context, Router
from storage.db import WriteNeeded
from storage.dialogs import waiting_dialog
from storage.members import member_for, note_seen
from storage.models import utcnow

logger = logging.getLogger(__name__)

ROLE_REFUSALS = {
    Role.PARTNER: i18n.N_(
        "{command} is for partner representatives. "
        "Ask a coordinator for an invite code and use /join CODE."
    ),
    Role.COORDINATOR: i18n.N_("{command} is for the network's coordinators."),
}


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
        allowance: Allowance | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        quiet_hours: QuietHours | None = None,
        reminder_offsets: tuple[int, ...] = (),
        readers: async_sessionmaker[AsyncSession] | None = None,
        meeting_length: dt.timedelta | None = None,
        feed_url: str | None = None,
    ) -> None:
        self.sessions = sessions
        # Units begin here when given, and move to `sessions` once they want to write.
        self.readers = readers
        self.network = network
        self.language = language
        self.timezone = timezone
        self.coordinators = frozenset(coordinators)
        self.allowance = allowance or Allowance()
        self.clock = clock
        self.quiet_hours = quiet_hours
        self.reminder_offsets = reminder_offsets
        self.meeting_length = meeting_length
        self.feed_url = feed_url
        self._commands: dict[str, Command] = {}
        # Answers a plain message in a private chat while its sender is in a dialog.
        self.dialog: Command | None = None
        self._noting: set[asyncio.Task[None]] = set()

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
        verdict, wait = Verdict.ANSWER, 0.0
        if request.platform is not Platform.CONSOLE:  # the operator's own tool
            person = (request.platform, request.sender.user_id)
            verdict, wait = self.allowance.check(person, button=request.via_button)
        if verdict is Verdict.QUIET:
            return None
        try:
            if self.readers is not None:
                try:
                    async with self.readers() as session:
                        return await self._answer(session, request, command, verdict, wait)
                except WriteNeeded:
                    pass  # nothing was stored or sent: start again as a writer
            async with self.sessions() as session:
                return await self._answer(session, request, command, verdict, wait)
        except Exception:
            # Also the member lookup: a busy or broken database is answered, never silent.
            return _failure(request.command)

    async def _answer(
        self,
        session: AsyncSession,
        request: Request,
        command: Command | None,
        verdict: Verdict,
        wait: float,
    ) -> Reply:
        member, created, seen_due = await member_for(
            session,
            request.platform,
            request.sender.user_id,
            display_name=request.sender.display_name,
            language=_supported(request.sender.language_code),
            private_chat=None if request.is_group else request.chat_id,
            now=self.clock(),
        )
        if created or session.dirty:
            # The member (a new name, reachable again) stays, whatever the command does.
            await session.commit()
        if seen_due:
            self._note_seen(request)
        role = self.role_of(request.platform, request.sender.user_id, member.partner_id)
        with i18n.using(self.localizer(member.language)):
            if verdict is Verdict.NOTICE:
                return _slow_down(wait)
            if command is None and self.dialog and await _in_dialog(session, request, member.id):
                command = self.dialog
            if command is None:
                return _unknown(request)
            if command.role > role:
                refusal = _(ROLE_REFUSALS[command.role]).format(command=f"/{command.name}")
                return Reply(Markup.escape(refusal), is_error=True)
            context = Context(
                session,
                member,
                role,
                self.network,
                self.clock(),
                self.commands_for(role),
                self.quiet_hours,
                self.reminder_offsets,
                self.meeting_length,
                self.feed_url,
            )
            return await self._run(command, request, context)

    def _note_seen(self, request: Request) -> None:
        """Note where the person wrote from, beside the answer: a read stays a read."""
        task = asyncio.create_task(self._write_seen(request, self.clock()))
        self._noting.add(task)
        task.add_done_callback(self._noting.discard)

    async def _write_seen(self, request: Request, now: dt.datetime) -> None:
        try:
            async with self.sessions() as session:
                await note_seen(
                    session, request.platform, request.sender.user_id, request.chat_id, now
                )
                await session.commit()
        except Exception:
            # Only where pushes go is at stake; the next command notes it again.
            logger.warning("cannot note where %s wrote from", request.platform, exc_info=True)

    async def settled(self) -> None:
        """Wait for the notes of where people wrote from that are still being written."""
        while self._noting:
            await asyncio.gather(*self._noting, return_exceptions=True)

    async def _run(self, command: Command, request: Request, context: Context) -> Reply:
        try:
            reply = await command.handler(request, context)
            await context.session.commit()
        except WriteNeeded:
            raise
        except UserError as error:
            await context.session.rollback()
            return _user_error(error, command)
        except Exception:
            await context.session.rollback()
            return _failure(command.name)
        return reply


def _failure(command: str) -> Reply:
    """Log the unexpected with a reference number, and give the person the same number."""
    ref = secrets.token_hex(3).upper()
    logger.exception("/%s failed (ref: %s)", shorten(command, 40), ref)
    return Reply(
        Markup.escape(
            _("Sorry, that went wrong on my side (ref: {ref}). Please try again later.")
        ).format(ref=ref),
        is_error=True,
    )


def _slow_down(wait: float) -> Reply:
    seconds = max(1, math.ceil(wait))
    text = _(
        "You are sending commands faster than I can answer. "
        "I will answer again in {seconds} seconds."
    ).format(seconds=seconds)
    return Reply(Markup.escape(text), is_error=True)


async def _in_dialog(session: AsyncSession, request: Request, member_id: int) -> bool:
    plain = not (request.command or request.is_group or request.via_button)
    return plain and await waiting_dialog(session, member_id)


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
