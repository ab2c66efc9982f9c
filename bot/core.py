"""The neutral core: what a transport hands to dispatch and what a handler hands back."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import NewType
from zoneinfo import ZoneInfo

from markupsafe import Markup

ChatId = NewType("ChatId", str)
ChatId.__doc__ = "A chat, room or console session, as the platform names it."
UserId = NewType("UserId", str)
UserId.__doc__ = "A person's stable id on one platform (never a changeable user name)."
MessageRef = NewType("MessageRef", str)
MessageRef.__doc__ = "A message the bot sent, as the platform names it (to edit it later)."


class Platform(enum.StrEnum):
    """A chat platform the bot can serve."""

    CONSOLE = "console"
    TELEGRAM = "telegram"
    MATRIX = "matrix"


class Role(enum.IntEnum):
    """What a member may do; each role may do everything the lower ones may."""

    MEMBER = 1
    PARTNER = 2
    COORDINATOR = 3


@dataclass(frozen=True, slots=True)
class Sender:
    """The person behind a request, as the platform knows them."""

    user_id: UserId
    display_name: str = ""
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class Request:
    """One command from one person, independent of the platform it came from."""

    platform: Platform
    chat_id: ChatId
    sender: Sender
    command: str
    args: str = ""
    is_group: bool = False
    via_button: bool = False
    # The bot's message whose button was pressed, as the platform names it.
    origin: MessageRef | None = None

    @property
    def words(self) -> list[str]:
        """Return the arguments split at white space."""
        return self.args.split()


@dataclass(frozen=True, slots=True)
class Button:
    """A neutral action such as ``rsvp:12:yes``: pressing it sends that command."""

    label: str
    command: str
    args: str = ""

    @property
    def action(self) -> str:
        """Return the action as ``command:arg:arg``, the form buttons carry."""
        return ":".join([self.command, *self.args.split()])

    @property
    def command_line(self) -> str:
        """Return the command a person could type instead of pressing the button."""
        return f"/{self.command} {self.args}".rstrip()


def parse_action(action: str) -> tuple[str, str]:
    """Split ``command:arg:arg`` into the command and its argument text."""
    command, _, rest = action.partition(":")
    return command, " ".join(part for part in rest.split(":") if part)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a reply, such as a calendar file or a chart."""

    filename: str
    mime_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot answers: safe HTML text, rows of buttons and attachments.

    ``edit_origin`` asks to replace the message whose button was pressed (paging) instead
    of sending a new one; ``is_error`` marks an answer meant for the one person who asked,
    which a transport may deliver privately or as a short notice.
    """

    text: Markup
    buttons: tuple[tuple[Button, ...], ...] = ()
    attachments: tuple[Attachment, ...] = field(default=())
    edit_origin: bool = False
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where a pushed message goes: one chat on one platform."""

    platform: Platform
    chat_id: ChatId


class UserError(Exception):
    """Bad input from a person; dispatch answers with the message and the usage line."""

    def __init__(self, message: str, *, show_usage: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.show_usage = show_usage


class DeliveryError(Exception):
    """A pushed message did not arrive; the subclass says whether trying again can help."""


class Unreachable(DeliveryError):
    """The person blocked the bot, left or was deactivated: send them nothing more."""


class Rejected(DeliveryError):
    """The platform refused this message for good (a bug); the message says why."""


class Obsolete(DeliveryError):
    """The message is no longer wanted: its meeting was cancelled or declined meanwhile."""


class RateLimited(DeliveryError):
    """The platform asked the bot to send nothing for a while."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after:.0f} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily stretch of network time in which announcements wait (it may span midnight)."""

    start: dt.time
    end: dt.time
    timezone: ZoneInfo

    def end_after(self, now: dt.datetime) -> dt.datetime | None:
        """Return when the quiet hours around ``now`` end, or None outside them."""
        local = now.astimezone(self.timezone)
        clock = local.time()
        if self.start <= self.end:
            inside = self.start <= clock < self.end
        else:
            inside = clock >= self.start or clock < self.end
        if not inside:
            return None
        day = local.date() if clock < self.end else local.date() + dt.timedelta(days=1)
        ends = dt.datetime.combine(day, self.end, tzinfo=self.timezone)
        return ends.astimezone(dt.UTC)
