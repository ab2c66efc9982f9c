"""The klimabot command line, run as a real process on a real database file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection

from storage.db import alembic_config, create_engine

DATA = Path(__file__).parents[1] / "data"


class Klimabot:
    """Run `klimabot` in a folder with its own config file and database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "config.yaml"
        self.config.write_text(
            "network:\n  name: Düsseldorfer Klimapakt\ndatabase:\n"
            "  url: sqlite+aiosqlite:///data/klimabot.db\n",
            encoding="utf-8",
        )
        self.database = folder / "data" / "klimabot.db"

    def __call__(
        self, *args: str, stdin: str = "", language: str = "C.UTF-8"
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("KLIMABOT_")
        }
        environment.update(LANG=language, LC_ALL="", LANGUAGE="", LC_MESSAGES="")
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=environment,
            timeout=60,
            check=False,
        )

    def rows(self, query: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(query).fetchall()


async def downgrade(database: Path, revision: str) -> None:
    """Take a database back to an older schema, as if made by an older Klimabot."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    async with engine.begin() as connection:
        await connection.run_sync(run)
    await engine.dispose()


@pytest.fixture
def klimabot(tmp_path: Path) -> Klimabot:
    return Klimabot(tmp_path)


def test_chat_loads_the_demo_once_and_answers_piped_lines(klimabot: Klimabot) -> None:
    first = klimabot("chat", stdin="/partner WEIQIAO\n\n/tips Wärmepumpe\n")
    assert first.returncode == 0, first.stderr
    assert "Neue Datenbank: Das Demo-Netzwerk ist geladen." in first.stderr
    assert first.stdout.startswith("WEIQIAO Germany GmbH\nTextil und Aluminium")
    assert "Tipps zu „Wärmepumpe“" in first.stdout
    # The database lives next to the config file, not in the working directory.
    assert klimabot.database.exists()
    partners = klimabot.rows("SELECT count(*) FROM partners")

    again = klimabot("chat", "--config", str(klimabot.config), stdin="/language en\n/meetings\n")
    assert again.returncode == 0, again.stderr
    assert "Demo" not in again.stderr
    assert "Upcoming meetings" in again.stdout
    assert klimabot.rows("SELECT count(*) FROM partners") == partners


def test_chat_as_coordinator_shows_the_coordinators_help(klimabot: Klimabot) -> None:
    result = klimabot(
        "--config", str(klimabot.config), "chat", "--as", "coordinator", stdin="/help\n"
    )
    assert "/einladen PARTNER" in result.stdout
    assert "Ihre Rolle: Koordination." in result.stdout


def test_the_operators_language_comes_from_the_environment(klimabot: Klimabot) -> None:
    result = klimabot("check-config", language="en_GB.UTF-8")
    assert result.stdout.startswith("The configuration is valid.\n")
    assert "Telegram: off (KLIMABOT_TELEGRAM_TOKEN not set)" in result.stdout


def test_import_is_idempotent_and_export_writes_the_same_format(klimabot: Klimabot) -> None:
    example = str(DATA / "import-example.yaml")
    first = klimabot("import", example)
    assert first.returncode == 0, first.stderr
    assert "Partner: 3 neu, 0 geändert, 0 unverändert" in first.stdout
    stored = klimabot.rows("SELECT * FROM tips ORDER BY id")

    second = klimabot("import", example)
    assert second.stdout == "Nichts geändert: Alles aus der Datei ist schon gespeichert.\n"
    assert klimabot.rows("SELECT * FROM tips ORDER BY id") == stored

    exported = klimabot("export")
    assert exported.returncode == 0
    (klimabot.folder / "out.yaml").write_text(exported.stdout, encoding="utf-8")
    (klimabot.folder / "fresh").mkdir()
    fresh = Klimabot(klimabot.folder / "fresh")
    assert fresh("import", str(klimabot.folder / "out.yaml")).returncode == 0
    assert fresh("export", "copy.yaml").returncode == 0
    assert (fresh.folder / "copy.yaml").read_text(encoding="utf-8") == exported.stdout


def test_a_bad_import_file_names_entry_and_field_and_imports_nothing(
    klimabot: Klimabot, tmp_path: Path
) -> None:
    assert klimabot("import", str(DATA / "import-example.yaml")).returncode == 0
    before = klimabot.rows("SELECT * FROM partners ORDER BY id")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "partners:\n  - name: Neue GmbH\n    joined: 2024-01-01\n"
        "meetings:\n  - title: Treffen\n    starts: morgen\n    location: IHK\n",
        encoding="utf-8",
    )
    result = klimabot("import", str(bad))
    assert result.returncode == 1
    assert (
        f"klimabot: {bad}: meetings[1] (Treffen), starts: „morgen“ ist kein Datum mit Uhrzeit"
        in result.stderr
    )
    assert result.stderr.endswith(f"klimabot: {bad}: Es wurde nichts importiert.\n")
    assert klimabot.rows("SELECT * FROM partners ORDER BY id") == before


def test_a_missing_import_file(klimabot: Klimabot) -> None:
    result = klimabot("import", "nope.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith("klimabot: nope.yaml: kann nicht gelesen werden (")


def test_backup_is_a_consistent_copy(klimabot: Klimabot) -> None:
    klimabot("chat", stdin="/subscribe\n")
    result = klimabot("backup", "backups/copy.db")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(klimabot.folder / "backups" / "copy.db") as copy:
        assert copy.execute("SELECT count(*) FROM partners").fetchone() == (11,)
        assert copy.execute("SELECT topic FROM subscriptions ORDER BY topic").fetchall() == [
            ("announcements",),
            ("reminders",),
        ]
    again = klimabot("backup", "backups/copy.db")
    assert again.returncode == 1
    assert "exists already" in again.stderr


def test_a_database_behind_the_code_is_refused_until_upgraded(klimabot: Klimabot) -> None:
    klimabot("chat", stdin="/help\n")
    asyncio.run(downgrade(klimabot.database, "0001"))

    refused = klimabot("chat", stdin="/help\n")
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(
        "run `klimabot db upgrade` (after `klimabot backup PATH`)"
    )
    assert refused.stderr.count("\n") == 1

    upgraded = klimabot("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout == "Die Datenbank ist auf dem neuesten Stand.\n"
    answered = klimabot("chat", stdin="/tips Wärmepumpe\n")
    assert "Luft-Wasser-Wärmepumpe ersetzt Gaskessel" in answered.stdout


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "network:\n  timezone: Mars/Olympus\n",
            "network.timezone: 'Mars/Olympus' ist nicht erlaubt; "
            "erlaubt ist ein IANA-Zeitzonenname wie Europe/Berlin",
        ),
        ("network: [unclosed\n", "Zeile 2: kein gültiges YAML"),
        ("\x00\x01binary", "Zeile 1: kein gültiges YAML"),
    ],
)
def test_a_broken_config_is_named_key_by_key(
    klimabot: Klimabot, config: str, message: str
) -> None:
    klimabot.config.write_text(config, encoding="utf-8")
    for arguments in (["check-config"], ["chat"], ["run"]):
        result = klimabot(*arguments, stdin="/help\n")
        assert result.returncode == 1
        assert result.stderr.startswith(f"klimabot: {klimabot.config}: {message}")
        assert result.stdout == ""


def test_an_explicit_config_file_must_exist(klimabot: Klimabot) -> None:
    result = klimabot("chat", "--config", "elsewhere.yaml")
    assert result.returncode == 1
    assert result.stderr == "klimabot: elsewhere.yaml: Datei nicht gefunden\n"


def test_run_without_any_chat_platform_says_what_to_set(klimabot: Klimabot) -> None:
    result = klimabot("run")
    assert result.returncode == 1
    assert "KLIMABOT_TELEGRAM_TOKEN" in result.stderr
    assert "Demo" not in result.stderr
    assert klimabot.rows("SELECT count(*) FROM partners") == [(0,)]


def test_usage_errors_exit_with_argparse_status(klimabot: Klimabot) -> None:
    result = klimabot("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
