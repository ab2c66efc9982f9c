"""The configuration: ``config.yaml`` validated at start, secrets from the environment."""

from __future__ import annotations

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
from sqlalchemy.exc import ArgumentError

from bot.i18n import N_, _

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

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        try:
            parsed = make_url(url)
        except ArgumentError as error:
            raise ValueError(
                N_("a database URL such as sqlite+aiosqlite:///klimabot.db")
            ) from error
        if parsed.get_backend_name() == "sqlite" and parsed.get_driver_name() != "aiosqlite":
            raise ValueError(N_("a SQLite URL with the async driver: sqlite+aiosqlite:///FILE"))
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
    telegram: Telegram = Telegram()
    matrix: Matrix = Matrix()


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
        """Read the secrets from KLIMABOT_* environment variables; empty means absent."""
        return cls(
            telegram_token=os.environ.get("KLIMABOT_TELEGRAM_TOKEN") or None,
            telegram_webhook_secret=os.environ.get("KLIMABOT_TELEGRAM_WEBHOOK_SECRET") or None,
            matrix_access_token=os.environ.get("KLIMABOT_MATRIX_ACCESS_TOKEN") or None,
            matrix_password=os.environ.get("KLIMABOT_MATRIX_PASSWORD") or None,
            matrix_pickle_key=os.environ.get("KLIMABOT_MATRIX_PICKLE_KEY") or None,
        )


# What is allowed, by pydantic error type; the rest fall back to pydantic's own words.
_ALLOWED = {
    "int_type": N_("a whole number"),
    "int_parsing": N_("a whole number"),
    "int_from_float": N_("a whole number"),
    "string_type": N_("text"),
    "string_too_short": N_("text that is not empty"),
    "string_too_long": N_("a shorter text"),
    "list_type": N_("a list, such as [1, 2]"),
    "model_type": N_("a section with keys below it"),
    "dict_type": N_("a section with keys below it"),
    "url_parsing": N_("an http(s) URL"),
    "url_scheme": N_("an http(s) URL"),
    "url_type": N_("an http(s) URL"),
}


def _describe(error: ErrorDetails) -> str:
    key = ".".join(str(part) for part in error["loc"]) or _("(top level)")
    kind = error["type"]
    if kind == "extra_forbidden":
        return _("{key}: unknown key (see the README for the keys there are)").format(key=key)
    if kind == "missing":
        return _("{key}: missing").format(key=key)
    value = error.get("input")
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    context = error.get("ctx") or {}
    if kind == "literal_error":
        allowed = _("one of {expected}").format(expected=context.get("expected", ""))
    elif kind == "value_error":
        allowed = _(str(context.get("error", error["msg"])))
        if isinstance(value, dict):
            # A rule about the section as a whole, not one value in it.
            return f"{key}: {allowed}"
    else:
        allowed = _(_ALLOWED[kind]) if kind in _ALLOWED else error["msg"]
    return _("{key}: {value} is not allowed; allowed is {allowed}").format(
        key=key, value=shown, allowed=allowed
    )


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
