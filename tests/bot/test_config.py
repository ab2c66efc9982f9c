"""The configuration: validated at start, with errors naming key, value and what is allowed."""

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import i18n
from bot.config import Config, ConfigError, Secrets, load_config, parse_config


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
