"""The configuration: ``config.yaml`` validated at start, secrets from the environment."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from bot.core import QuietHours
from bot.durations import format_minutes, parse_minutes
from bot.i18n import N_, _
from storage.db import DEFAULT_BUSY_TIMEOUT

DEFAULT_PATH = Path("config.yaml")
MATRIX_USER = re.compile(r"^@[^:\s]+:[^\s]+$")


class ConfigError(Exception):
    """The configuration cannot be used; each line names a key, its value and what is allowed."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(N_("an IANA time zone name such as Europe/Berlin")) from error
    return name


def _matrix_user(user_id: str) -> str:
    if not MATRIX_USER.match(user_id):
        raise ValueError(N_("a Matrix user id such as @name:example.org"))
    return user_id


MatrixUserId = Annotated[str, AfterValidator(_matrix_user)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Network(_Section):
    """Who the bot serves."""

    name: str = Field(default="Düsseldorfer Klimapakt", min_length=1, max_length=100)
    timezone: Annotated[str, AfterValidator(_time_zone)] = "Europe/Berlin"
    language: Literal["de", "en"] = "de"

    @property
    def zone(self) -> ZoneInfo:
        """Return the network's time zone."""
        return ZoneInfo(self.timezone)


class Database(_Section):
    """Where the data lives."""

    url: str = "sqlite+aiosqlite:///klimabot.db"
    # Seconds a command that writes waits for another process's write lock (an import).
    busy_timeout: float = Field(default=DEFAULT_BUSY_TIMEOUT, gt=0)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        try:
            parsed = make_url(url)
        except ArgumentError as error:
            raise ValueError(
                N_("a database URL such as sqlite+aiosqlite:///klimabot.db")
            ) from error
        if parsed.get_backend_name() == "sqlite":
            if parsed.get_driver_name() != "aiosqlite":
                raise ValueError(
                    N_("a SQLite URL with the async driver: sqlite+aiosqlite:///FILE")
                )
            if parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
                raise ValueError(
                    N_(
                        "a database file such as sqlite+aiosqlite:///klimabot.db "
                        "(an in-memory database loses everything when the command ends)"
                    )
                )
            return url
        try:
            dialect = parsed.get_dialect()
            dialect.import_dbapi()
        except (NoSuchModuleError, ImportError) as error:
            raise ValueError(
                N_(
                    "a database whose driver is installed: sqlite+aiosqlite:///FILE "
                    "or postgresql+asyncpg://USER@HOST/DATABASE"
                )
            ) from error
        if not dialect.is_async:
            raise ValueError(
                N_("an async driver, such as postgresql+asyncpg://USER@HOST/DATABASE")
            )
        return url


class Coordinators(_Section):
    """Who may run the network: platform user ids, never user names."""

    telegram: list[int] = []
    matrix: list[MatrixUserId] = []


class TelegramLimits(_Section):
    """How fast the bot may send: Telegram's published limits unless raised for paid broadcasts."""

    messages_per_second: float = Field(default=30, gt=0)
    private_chat_messages_per_second: float = Field(default=1, gt=0)
    group_messages_per_minute: float = Field(default=20, gt=0)


class RateLimit(_Section):
    """How many commands one person may send on a chat platform before the bot asks for a pause."""

    commands: int = Field(default=20, ge=1)
    seconds: float = Field(default=30, gt=0)


QUIET_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def _quiet_hours(value: str | None) -> str | None:
    if value is not None and not QUIET_HOURS.match(value.strip()):
        raise ValueError(N_("a span of network time such as 21:00-08:00"))
    return value.strip() if value else None


class Announcements(_Section):
    """How announcements go out."""

    quiet_hours: Annotated[str | None, AfterValidator(_quiet_hours)] = None

    def quiet(self, timezone: ZoneInfo) -> QuietHours | None:
        """Return the quiet hours in the network's time zone, if there are any."""
        if self.quiet_hours is None:
            return None
        start, end = self.quiet_hours.split("-")
        return QuietHours(dt.time.fromisoformat(start), dt.time.fromisoformat(end), timezone)


def _minutes(text: str) -> int:
    minutes = parse_minutes(text)
    if minutes is None:
        raise ValueError(N_("a duration such as 7d, 2h, 30m or 1h30m (at most 60 days)"))
    return minutes


Duration = Annotated[str, AfterValidator(lambda text: format_minutes(_minutes(text)))]


class Reminders(_Section):
    """When members are reminded of a meeting."""

    offsets: list[Duration] = Field(default=["7d", "1d", "2h"], max_length=10)
    catch_up: Duration = "6h"

    @property
    def offset_minutes(self) -> tuple[int, ...]:
        """Return the offsets in minutes, longest first."""
        return tuple(sorted({_minutes(text) for text in self.offsets}, reverse=True))

    @property
    def catch_up_minutes(self) -> int:
        """Return how late a missed reminder may still go out, in minutes."""
        return _minutes(self.catch_up)


class Meetings(_Section):
    """How meetings appear in calendar files."""

    # The length calendar apps show for a meeting without an end; None leaves the end open.
    default_duration: Duration | None = None

    @property
    def default_length(self) -> dt.timedelta | None:
        """Return the length shown for a meeting without an end, if one is configured."""
        if self.default_duration is None:
            return None
        return dt.timedelta(minutes=_minutes(self.default_duration))


class CalendarFeeds(_Section):
    """The private calendar feeds; `klimabot run` serves them when public_url is set."""

    public_url: HttpUrl | None = None
    listen: str = "127.0.0.1"
    port: int = Field(default=8444, ge=1, le=65535)

    @property
    def feed_url(self) -> str | None:
        """Return the address the feeds are under (ending in /calendar/), if they are served."""
        if self.public_url is None:
            return None
        return str(self.public_url).rstrip("/") + "/calendar/"


class Telegram(_Section):
    """The Telegram transport; it runs when KLIMABOT_TELEGRAM_TOKEN is set."""

    base_url: HttpUrl = HttpUrl("https://api.telegram.org/bot")
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: HttpUrl | None = None
    listen: str = "127.0.0.1"
    port: int = Field(default=8443, ge=1, le=65535)
    limits: TelegramLimits = TelegramLimits()

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> Telegram:
        if self.mode == "webhook" and self.webhook_url is None:
            raise ValueError(
                N_("webhook_url is needed in webhook mode: the public https address of the bot")
            )
        return self


class Matrix(_Section):
    """The Matrix transport; it runs when an access token or password is set."""

    homeserver: HttpUrl | None = None
    user_id: MatrixUserId | None = None
    data_dir: Path = Path("matrix-data")


class Config(_Section):
    """The whole configuration."""

    network: Network = Network()
    database: Database = Database()
    coordinators: Coordinators = Coordinators()
    rate_limit: RateLimit = RateLimit()
    announcements: Announcements = Announcements()
    reminders: Reminders = Reminders()
    telegram: Telegram = Telegram()
    matrix: Matrix = Matrix()
    meetings: Meetings = Meetings()
    calendar: CalendarFeeds = CalendarFeeds()


# The log replaces every occurrence of a secret; a shorter one would blank out common text.
SECRET_MIN_LENGTH = 8


class SecretError(Exception):
    """A secret in the environment cannot be used; the message names the variable."""


class Secrets(BaseModel):
    """What comes from the environment only, never from a file."""

    model_config = ConfigDict(frozen=True)

    telegram_token: str | None = Field(default=None, repr=False)
    telegram_webhook_secret: str | None = Field(default=None, repr=False)
    matrix_access_token: str | None = Field(default=None, repr=False)
    matrix_password: str | None = Field(default=None, repr=False)
    matrix_pickle_key: str | None = Field(default=None, repr=False)

    @classmethod
    def from_environment(cls) -> Secrets:
        """Read the secrets from KLIMABOT_* environment variables; empty means absent.

        Refuse one too short to be hidden in the log without hiding ordinary text too.
        """
        values = {field: os.environ.get(variable(field)) or None for field in cls.model_fields}
        for field, value in values.items():
            if value is not None and len(value) < SECRET_MIN_LENGTH:
                raise SecretError(
                    _(
                        "{variable} is too short: a secret needs at least {minimum} "
                        "characters, so that the log can hide it safely"
                    ).format(variable=variable(field), minimum=SECRET_MIN_LENGTH)
                )
        return cls(**values)

    def values(self) -> list[str]:
        """Return every secret that is set, for the log to hide."""
        return [value for value in self.model_dump().values() if value]


def variable(field: str) -> str:
    """Return the environment variable of a secret: ``KLIMABOT_`` and its name."""
    return f"KLIMABOT_{field.upper()}"


def setup_problems(config: Config, secrets: Secrets) -> list[str]:
    """Return what `klimabot run` would refuse about the platforms whose secrets are set."""
    problems = []
    telegram = config.telegram
    if secrets.telegram_token and telegram.mode == "webhook":
        if not secrets.telegram_webhook_secret:
            problems.append(
                _("Webhook mode needs a secret: set KLIMABOT_TELEGRAM_WEBHOOK_SECRET.")
            )
        official = telegram.base_url.host == "api.telegram.org"
        if official and telegram.webhook_url and telegram.webhook_url.scheme != "https":
            problems.append(
                _(
                    "telegram.webhook_url must be an https address: Telegram delivers "
                    "webhooks over https only."
                )
            )
        feeds = config.calendar
        if feeds.feed_url and (feeds.listen, feeds.port) == (telegram.listen, telegram.port):
            # Telegram's webhook server cannot share its port with the calendar feeds.
            problems.append(
                _(
                    "calendar.port {port} is where the Telegram webhook listens: choose another."
                ).format(port=feeds.port)
            )
    matrix = config.matrix
    if (secrets.matrix_access_token or secrets.matrix_password) and (
        matrix.homeserver is None or matrix.user_id is None
    ):
        problems.append(
            _("Matrix needs matrix.homeserver and matrix.user_id in the configuration.")
        )
    return problems


# What is allowed, by pydantic error type; the placeholders come from the error's context.
_ALLOWED = {
    "int_type": N_("a whole number"),
    "int_parsing": N_("a whole number"),
    "int_parsing_size": N_("a whole number"),
    "int_from_float": N_("a whole number"),
    "float_type": N_("a number such as 1.5"),
    "float_parsing": N_("a number such as 1.5"),
    "finite_number": N_("a number such as 1.5"),
    "bool_type": N_("true or false"),
    "bool_parsing": N_("true or false"),
    "greater_than": N_("a number greater than {gt}"),
    "greater_than_equal": N_("a number of at least {ge}"),
    "less_than": N_("a number less than {lt}"),
    "less_than_equal": N_("a number of at most {le}"),
    "string_type": N_("text"),
    "string_too_short": N_("text that is not empty"),
    "string_too_long": N_("a text of at most {max_length} characters"),
    "list_type": N_("a list, such as [1, 2]"),
    "model_type": N_("a section with keys below it"),
    "model_attributes_type": N_("a section with keys below it"),
    "dict_type": N_("a section with keys below it"),
    "path_type": N_("the path of a folder or file"),
    "url_parsing": N_("an http(s) URL"),
    "url_scheme": N_("an http(s) URL"),
    "url_type": N_("an http(s) URL"),
    "url_too_long": N_("a URL of at most {max_length} characters"),
}
_OTHERWISE = N_("a value of the kind the README describes for this key")


def _allowed(kind: str, context: dict[str, object]) -> str:
    # Numbers as the YAML file writes them (1.5, not the German 1,5).
    values = {
        name: f"{value:g}" if isinstance(value, float) else value
        for name, value in context.items()
    }
    try:
        return _(_ALLOWED[kind]).format(**values)
    except (KeyError, IndexError):  # an unknown type, or a context without the value
        return _(_OTHERWISE)


def _choices(expected: str) -> str:
    # pydantic joins the choices in English ("'a', 'b' or 'c'"); join them in ours.
    items: list[str] = re.findall(r"'[^']*'", expected) or [expected]
    if len(items) == 1:
        return items[0]
    return _("{choices} or {last}").format(choices=", ".join(items[:-1]), last=items[-1])


def _describe(error: ErrorDetails) -> str:
    key = ".".join(str(part) for part in error["loc"]) or _("(top level)")
    kind = error["type"]
    if kind == "extra_forbidden":
        return _("{key}: unknown key (see the README for the keys there are)").format(key=key)
    if kind == "missing":
        return _("{key}: missing").format(key=key)
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if error["loc"] == ("database", "url") and isinstance(value, str):
        shown = repr(_masked(value))
    context = error.get("ctx") or {}
    if kind == "literal_error":
        allowed = _("one of {expected}").format(expected=_choices(str(context.get("expected"))))
    elif kind == "value_error":
        allowed = _(str(context.get("error", error["msg"])))
        if isinstance(value, dict):
            # A rule about the section as a whole, not one value in it.
            return f"{key}: {allowed}"
    else:
        allowed = _allowed(kind, context)
    return _("{key}: {value} is not allowed; allowed is {allowed}").format(
        key=key, value=shown, allowed=allowed
    )


def _masked(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    return parsed.render_as_string(hide_password=True) if parsed.password else url


def parse_config(text: str, path: Path) -> Config:
    """Validate the text of a config file; raise ConfigError naming every bad key."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = getattr(error, "position", None)  # a ReaderError has no mark
        line = mark.line + 1 if mark is not None else text[: position or 0].count("\n") + 1
        problem = getattr(error, "problem", None) or getattr(error, "reason", None) or ""
        message = _("line {line}: not valid YAML ({problem})").format(line=line, problem=problem)
        raise ConfigError(path, [message]) from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(path, [_("the file must hold sections such as network: and database:")])
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(path, [_describe(e) for e in error.errors()]) from error
    return _resolve_database(config, path)


def _resolve_database(config: Config, path: Path) -> Config:
    # Relative paths are relative to the config file's folder, not the cwd.
    if not config.matrix.data_dir.is_absolute():
        matrix = config.matrix.model_copy(
            update={"data_dir": (path.parent / config.matrix.data_dir).resolve()}
        )
        config = config.model_copy(update={"matrix": matrix})
    url = make_url(config.database.url)
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return config
    if Path(database).is_absolute():
        return config
    absolute = (path.parent / database).resolve()
    resolved = url.set(database=str(absolute)).render_as_string(hide_password=False)
    return config.model_copy(update={"database": Database(url=resolved)})


def load_config(path: Path | None) -> Config:
    """Load the config file; without an explicit path, a missing ./config.yaml means defaults."""
    explicit = path is not None
    path = path or DEFAULT_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        if explicit:
            raise ConfigError(path, [_("file not found")]) from error
        return _resolve_database(Config(), path.absolute())
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, [_("cannot be read: {error}").format(error=error)]) from error
    return parse_config(text, path.absolute())
