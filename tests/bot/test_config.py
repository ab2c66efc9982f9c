"""The configuration: validated at start, with errors naming key, value and what is allowed."""

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import i18n
from bot.config import (
    Config,
    ConfigError,
    SecretError,
    Secrets,
    load_config,
    parse_config,
    setup_problems,
)


@pytest.fixture(autouse=True)
def english() -> object:
    with i18n.using(i18n.localizer("en", ZoneInfo("Europe/Berlin"))):
        yield


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(text, Path("/srv/klimabot/config.yaml"))
    return error.value.problems


def test_the_shipped_config_is_valid() -> None:
    config = load_config(Path(__file__).parents[2] / "config.yaml")
    assert config.network.timezone == "Europe/Berlin"
    assert config.network.language == "de"
    assert config.telegram.mode == "polling"


def test_relative_database_path_is_relative_to_the_config_file() -> None:
    config = parse_config("database: {url: 'sqlite+aiosqlite:///data/k.db'}", Path("/srv/c.yaml"))
    assert config.database.url == "sqlite+aiosqlite:////srv/data/k.db"


def test_missing_default_file_means_defaults_but_explicit_path_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None).network == Config().network
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "nope.yaml")
    assert error.value.problems == ["file not found"]


def test_unknown_time_zone_names_key_value_and_what_is_allowed() -> None:
    assert problems("network:\n  timezone: Mars/Olympus\n") == [
        "network.timezone: 'Mars/Olympus' is not allowed; "
        "allowed is an IANA time zone name such as Europe/Berlin"
    ]


def test_every_bad_key_is_reported_at_once() -> None:
    found = problems(
        "network:\n  language: fr\n  colour: green\n"
        "telegram:\n  mode: carrier-pigeon\n"
        "coordinators:\n  telegram: [alice]\n  matrix: [bob]\n"
    )
    assert found == [
        "network.language: 'fr' is not allowed; allowed is one of 'de' or 'en'",
        "network.colour: unknown key (see the README for the keys there are)",
        "coordinators.telegram.0: 'alice' is not allowed; allowed is a whole number",
        "coordinators.matrix.0: 'bob' is not allowed; "
        "allowed is a Matrix user id such as @name:example.org",
        "telegram.mode: 'carrier-pigeon' is not allowed; allowed is one of 'polling' or 'webhook'",
    ]


def test_broken_yaml_names_the_line() -> None:
    assert problems("network:\n  name: [unclosed\n") == [
        "line 3: not valid YAML (expected ',' or ']', but got '<stream end>')"
    ]


def test_a_file_that_is_not_a_mapping() -> None:
    assert problems("- just\n- a list\n") == [
        "the file must hold sections such as network: and database:"
    ]


def test_database_url_must_use_the_async_driver() -> None:
    assert problems("database: {url: 'sqlite:///k.db'}") == [
        "database.url: 'sqlite:///k.db' is not allowed; "
        "allowed is a SQLite URL with the async driver: sqlite+aiosqlite:///FILE"
    ]


def test_secrets_come_from_the_environment_and_never_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KLIMABOT_TELEGRAM_TOKEN", "123:SECRET")
    monkeypatch.setenv("KLIMABOT_MATRIX_ACCESS_TOKEN", "")
    secrets = Secrets.from_environment()
    assert secrets.telegram_token == "123:SECRET"
    assert secrets.matrix_access_token is None
    assert "SECRET" not in repr(secrets)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "telegram: {port: 0}",
            "telegram.port: 0 is not allowed; allowed is a number of at least 1",
        ),
        (
            "telegram: {port: 70000}",
            "telegram.port: 70000 is not allowed; allowed is a number of at most 65535",
        ),
        (
            "rate_limit: {seconds: 0}",
            "rate_limit.seconds: 0 is not allowed; allowed is a number greater than 0",
        ),
        (
            "rate_limit: {seconds: fast}",
            "rate_limit.seconds: 'fast' is not allowed; allowed is a number such as 1.5",
        ),
        (
            "database: {busy_timeout: -1}",
            "database.busy_timeout: -1 is not allowed; allowed is a number greater than 0",
        ),
        (
            "network: {name: " + "x" * 101 + "}",
            f"network.name: '{'x' * 101}' is not allowed; "
            "allowed is a text of at most 100 characters",
        ),
        (
            "matrix: {data_dir: [a]}",
            "matrix.data_dir: list is not allowed; allowed is the path of a folder or file",
        ),
        (
            "telegram: {mode: carrier-pigeon, webhook_url: https://x.org}",
            "telegram.mode: 'carrier-pigeon' is not allowed; allowed is one of 'polling' or "
            "'webhook'",
        ),
    ],
)
def test_pydantics_errors_are_told_in_our_words(text: str, problem: str) -> None:
    assert problems(text) == [problem]


def test_pydantics_errors_are_told_in_the_operators_language() -> None:
    with i18n.using(i18n.localizer("de", ZoneInfo("Europe/Berlin"))):
        found = problems(
            "telegram: {port: 0, mode: fax, limits: {messages_per_second: viele}}\n"
            "matrix: {homeserver: ftp://example.org}"
        )
    assert found == [
        "telegram.mode: 'fax' ist nicht erlaubt; erlaubt ist einer der Werte "
        "'polling' oder 'webhook'",
        "telegram.port: 0 ist nicht erlaubt; erlaubt ist eine Zahl von mindestens 1",
        "telegram.limits.messages_per_second: 'viele' ist nicht erlaubt; "
        "erlaubt ist eine Zahl wie 1.5",
        "matrix.homeserver: 'ftp://example.org' ist nicht erlaubt; erlaubt ist eine http(s)-URL",
    ]
    assert not any("Input should" in problem for problem in found)


DRIVER = (
    "a database whose driver is installed: sqlite+aiosqlite:///FILE "
    "or postgresql+asyncpg://USER@HOST/DATABASE"
)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (
            "sqlite+aiosqlite:///:memory:",
            "a database file such as sqlite+aiosqlite:///klimabot.db "
            "(an in-memory database loses everything when the command ends)",
        ),
        ("postgres://bot@db/klimabot", DRIVER),
        ("postgresql://bot@db/klimabot", DRIVER),
        ("mysql+aiomysql://bot@db/klimabot", DRIVER),
    ],
)
def test_a_database_url_the_bot_cannot_use_is_refused(url: str, allowed: str) -> None:
    assert problems(f"database: {{url: '{url}'}}") == [
        f"database.url: '{url}' is not allowed; allowed is {allowed}"
    ]


def test_a_refused_database_url_does_not_show_its_password() -> None:
    [problem] = problems("database: {url: 'postgres://bot:geheim@db/klimabot'}")
    assert problem.startswith("database.url: 'postgres://bot:***@db/klimabot' is not allowed")


def test_postgresql_with_the_async_driver_is_accepted() -> None:
    url = "postgresql+asyncpg://bot:geheim@db.example.org/klimabot"
    assert parse_config(f"database: {{url: '{url}'}}", Path("/srv/c.yaml")).database.url == url


def test_a_secret_too_short_to_hide_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLIMABOT_TELEGRAM_WEBHOOK_SECRET", "x" * 7)
    with pytest.raises(SecretError) as error:
        Secrets.from_environment()
    assert str(error.value) == (
        "KLIMABOT_TELEGRAM_WEBHOOK_SECRET is too short: a secret needs at least 8 characters, "
        "so that the log can hide it safely"
    )
    monkeypatch.setenv("KLIMABOT_TELEGRAM_WEBHOOK_SECRET", "x" * 8)
    assert Secrets.from_environment().telegram_webhook_secret == "x" * 8


def test_http_webhooks_are_refused_only_for_telegrams_own_api() -> None:
    secrets = Secrets(telegram_token="123456:TOKEN", telegram_webhook_secret="secret-123")
    official = parse_config(
        "telegram: {mode: webhook, webhook_url: 'http://bot.example.org/hook'}", Path("/c.yaml")
    )
    assert setup_problems(official, secrets) == [
        "telegram.webhook_url must be an https address: Telegram delivers webhooks over "
        "https only."
    ]
    self_hosted = parse_config(
        "telegram: {mode: webhook, webhook_url: 'http://127.0.0.1:8443/hook', "
        "base_url: 'http://127.0.0.1:8081/bot'}",
        Path("/c.yaml"),
    )
    assert setup_problems(self_hosted, secrets) == []
    assert setup_problems(official, Secrets()) == []  # Telegram is off


def test_every_secret_is_read_from_its_variable_and_handed_to_the_log_to_hide(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for number, field in enumerate(Secrets.model_fields):
        monkeypatch.setenv(f"KLIMABOT_{field.upper()}", f"secret-value-{number}")
    secrets = Secrets.from_environment()
    assert sorted(secrets.values()) == sorted(
        f"secret-value-{number}" for number in range(len(Secrets.model_fields))
    )
    assert "KLIMABOT_MATRIX_PICKLE_KEY" in {f"KLIMABOT_{f.upper()}" for f in Secrets.model_fields}
