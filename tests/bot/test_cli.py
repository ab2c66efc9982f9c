"""The klimabot command line, run as a real process on a real database file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection

from storage.db import alembic_config, create_engine
from storage.search import add_sql_functions

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
        self.database.parent.mkdir(exist_ok=True)

    def __call__(
        self,
        *args: str,
        stdin: str = "",
        language: str = "C.UTF-8",
        secrets: dict[str, str] | None = None,
        umask: int = -1,
        unprivileged: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args, unprivileged=unprivileged),
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env=self.environment(language, secrets),
            timeout=60,
            check=False,
            umask=umask,
        )

    def command(self, *args: str, unprivileged: bool = False) -> list[str]:
        command = [sys.executable, "-m", "bot", *args]
        if unprivileged and os.geteuid() == 0:
            # Root reads and writes files whatever their modes; without these capabilities
            # the modes count, as they do for the user a bot runs as.
            capabilities = "--bounding-set=-dac_override,-dac_read_search,-fowner"
            return ["setpriv", capabilities, *command]
        return command

    @staticmethod
    def environment(
        language: str = "C.UTF-8", secrets: dict[str, str] | None = None
    ) -> dict[str, str]:
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("KLIMABOT_")
        }
        environment.update(LANG=language, LC_ALL="", LANGUAGE="", LC_MESSAGES="")
        environment.update(secrets or {})
        return environment

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
    assert result.stdout.endswith("The configuration is valid.\n")
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


def test_an_import_with_a_series_says_what_it_made(klimabot: Klimabot) -> None:
    result = klimabot("import", str(DATA / "import-series.yaml"))
    assert result.returncode == 0, result.stderr
    assert "Treffen: 1 neu, 0 geändert, 0 unverändert" in result.stdout
    assert "Treffenreihen: 1 neu, 0 geändert, 0 unverändert" in result.stdout


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
    assert again.stderr == (
        "klimabot: backups/copy.db gibt es schon; wählen Sie einen neuen Dateinamen\n"
    )


def test_a_database_behind_the_code_is_refused_until_upgraded(klimabot: Klimabot) -> None:
    klimabot("chat", stdin="/help\n")
    asyncio.run(downgrade(klimabot.database, "0001"))

    refused = klimabot("chat", stdin="/help\n")
    assert refused.returncode == 1
    assert refused.stderr == (
        f"klimabot: {klimabot.database}: Das Datenbankschema ist älter als diese Version von "
        "Klimabot; führen Sie `klimabot db upgrade` aus (nach `klimabot backup PFAD`)\n"
    )
    # The advice can be followed: the backup does not need the schema to be current.
    saved = klimabot("backup", "before-upgrade.db")
    assert saved.returncode == 0, saved.stderr
    with sqlite3.connect(klimabot.folder / "before-upgrade.db") as copy:
        assert copy.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]

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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            (DATA / "import-billion-laughs.yaml").read_text(encoding="utf-8"),
            "file: die YAML-Aliase (*name) der Datei stünden für mehr als 100000 Werte "
            "(Zeile 7); bitte die Einträge ausschreiben",
            id="billion-laughs",
        ),
        pytest.param(
            "partners:\n  - " + "[" * 100_000 + "]" * 100_000 + "\n",
            "file: die Datei ist tiefer als 32 Ebenen verschachtelt (Zeile 2); "
            "eine Importdatei braucht nur wenige",
            id="100000-levels",
        ),
    ],
)
def test_a_hostile_import_file_is_refused_at_once(
    klimabot: Klimabot, tmp_path: Path, content: str, message: str
) -> None:
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(content, encoding="utf-8")

    # The runner's 60 s timeout is only a safety net; the refusal takes a moment.
    result = klimabot("import", str(hostile))

    assert result.returncode == 1
    assert result.stderr == (
        f"klimabot: {hostile}: {message}\nklimabot: {hostile}: Es wurde nichts importiert.\n"
    )
    assert klimabot.rows("SELECT count(*) FROM partners") == [(0,)]


def test_bad_values_are_named_in_the_operators_language(
    klimabot: Klimabot, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'partners:\n  - {name: "Acme\\a", joined: 0001-01-01}\n'
        "tips:\n  - {title: Tipp, partner: Acme, category: heat, text: a,\n"
        "           co2_t_per_year: 1.0e+40}\n",
        encoding="utf-8",
    )

    result = klimabot("import", str(bad), language="en_GB.UTF-8")

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"klimabot: {bad}: partners[1] (Acme\\x07), name: the text contains the control "
        "character U+0007 at position 5",
        f"klimabot: {bad}: partners[1] (Acme\\x07), joined: '0001-01-01' is not between the "
        "years 1900 and 2199",
        f"klimabot: {bad}: tips[1] (Tipp), co2_t_per_year: '1e+40' is more than 1000000",
        f"klimabot: {bad}: nothing was imported.",
    ]


def test_a_partner_is_found_whatever_the_case_of_its_name(
    klimabot: Klimabot, tmp_path: Path
) -> None:
    assert klimabot("import", str(DATA / "import-example.yaml")).returncode == 0
    respelled = tmp_path / "respelled.yaml"
    respelled.write_text(
        "partners:\n  - {name: ihk düsseldorf, sector: Kammer, joined: 2022-09-01}\n",
        encoding="utf-8",
    )

    result = klimabot("import", str(respelled))

    assert result.returncode == 0, result.stderr
    assert "Partner: 0 neu, 1 geändert, 0 unverändert" in result.stdout
    assert klimabot.rows("SELECT count(*) FROM partners") == [(3,)]


def test_a_large_import_reports_its_progress(klimabot: Klimabot, tmp_path: Path) -> None:
    large = tmp_path / "large.yaml"
    large.write_text(
        "partners:\n  - {name: Acme, joined: 2022-10-01}\ntips:\n"
        + "".join(
            f"  - {{title: Tipp {n}, partner: Acme, category: heat, text: a}}\n"
            for n in range(10_000)
        ),
        encoding="utf-8",
    )

    result = klimabot("import", str(large))

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"klimabot: {large}: Schreibe: {done} von 10001 Einträgen" for done in (1, 5001, 10001)
    ]
    assert klimabot.rows("SELECT count(*) FROM tips") == [(10_000,)]


def test_export_overwrites_a_file_only_with_force(klimabot: Klimabot) -> None:
    target = klimabot.folder / "out.yaml"
    target.write_text("earlier\n", encoding="utf-8")

    refused = klimabot("export", "out.yaml")
    forced = klimabot("export", "out.yaml", "--force")

    assert refused.returncode == 1
    assert refused.stderr == (
        "klimabot: out.yaml gibt es schon; mit --force wird die Datei überschrieben\n"
    )
    assert forced.returncode == 0, forced.stderr
    assert target.read_text(encoding="utf-8") == "partners: []\n\nmeetings: []\n\ntips: []\n"
    assert sorted(path.name for path in klimabot.folder.iterdir()) == [
        "config.yaml",
        "data",
        "out.yaml",
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing/out.yaml"], "missing/out.yaml: den Ordner missing gibt es nicht"),
        (["--force", "/dev/full"], "/dev/full: nicht genug Platz auf dem Datenträger"),
        (["--force", "data"], "data: ist ein Ordner, keine Datei"),
    ],
)
def test_export_that_cannot_be_written_says_why_in_one_line(
    klimabot: Klimabot, arguments: list[str], message: str
) -> None:
    result = klimabot("export", *arguments)

    assert result.returncode == 1
    assert result.stderr == f"klimabot: {message}\n"


def test_chat_loads_no_demo_into_a_database_it_did_not_create(klimabot: Klimabot) -> None:
    # Made for production: migrated, but nothing imported yet.
    assert klimabot("db", "upgrade").returncode == 0
    result = klimabot("chat", stdin="/meetings\n")
    assert result.returncode == 0, result.stderr
    assert "Demo" not in result.stderr
    assert result.stdout.strip() == "Zurzeit sind keine Treffen geplant."
    assert klimabot.rows("SELECT count(*) FROM partners") == [(0,)]


def test_chat_answers_reads_while_another_process_holds_the_write_lock(
    klimabot: Klimabot,
) -> None:
    assert klimabot("chat", stdin="/help\n").returncode == 0  # the demo and the member
    lock = sqlite3.connect(klimabot.database, isolation_level=None)
    add_sql_functions(lock)  # the tip index's triggers use them
    try:
        lock.execute("BEGIN IMMEDIATE")
        lock.execute("DELETE FROM tips")  # like an import, half done
        result = klimabot("chat", stdin="/meetings\n/tips Wärmepumpe\n/partner WEIQIAO\n")
        assert lock.in_transaction
    finally:
        lock.close()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Nächste Treffen" in result.stdout
    assert "Luft-Wasser-Wärmepumpe ersetzt Gaskessel" in result.stdout
    assert "WEIQIAO Germany GmbH\nTextil und Aluminium" in result.stdout


EVERY_COMMAND = (
    ["run"],
    ["chat"],
    ["import", str(DATA / "import-example.yaml")],
    ["export"],
    ["db", "upgrade"],
    ["backup", "copy.db"],
    ["check-config"],
)


def _not_sqlite(klimabot: Klimabot) -> str:
    klimabot.database.write_text("Name;Sektor\nWEIQIAO;Textil\n" * 100, encoding="utf-8")
    return f"{klimabot.database}: Diese Datei ist keine SQLite-Datenbank"


def _read_only_file(klimabot: Klimabot) -> str:
    klimabot("db", "upgrade")
    klimabot.database.chmod(0o444)
    return f"{klimabot.database}: Die Datei ist für diesen Benutzer schreibgeschützt"


def _read_only_folder(klimabot: Klimabot) -> str:
    klimabot("db", "upgrade")
    klimabot.database.parent.chmod(0o555)
    return f"Der Ordner {klimabot.database.parent} ist für diesen Benutzer schreibgeschützt"


def _missing_folder(klimabot: Klimabot) -> str:
    klimabot.config.write_text("database:\n  url: sqlite+aiosqlite:///nowhere/k.db\n")
    return f"{klimabot.folder}/nowhere/k.db: Den Ordner {klimabot.folder}/nowhere gibt es nicht"


def _url(url: str, allowed: str) -> Callable[[Klimabot], str]:
    def configure(klimabot: Klimabot) -> str:
        klimabot.config.write_text(f"database:\n  url: '{url}'\n", encoding="utf-8")
        shown = url.replace(":geheim", ":***")
        return (
            f"{klimabot.config}: database.url: '{shown}' ist nicht erlaubt; erlaubt ist {allowed}"
        )

    configure.__name__ = url.split(":", maxsplit=1)[0]
    return configure


DRIVER = "eine Datenbank, deren Treiber installiert ist"


@pytest.mark.parametrize(
    "arrange",
    [
        _not_sqlite,
        _read_only_file,
        _read_only_folder,
        _missing_folder,
        _url("sqlite+aiosqlite:///:memory:", "eine Datenbankdatei wie sqlite+aiosqlite:///"),
        _url("postgresql://klimabot:geheim@db.example.org/klimabot", DRIVER),
        _url("postgres://klimabot:geheim@db.example.org/klimabot", DRIVER),
        _url("mysql+aiomysql://klimabot@db.example.org/klimabot", DRIVER),
    ],
    ids=lambda arrange: arrange.__name__,
)
def test_an_unusable_database_gets_one_line_from_every_command(
    klimabot: Klimabot, arrange: Callable[[Klimabot], str]
) -> None:
    expected = arrange(klimabot)
    try:
        for command in EVERY_COMMAND:
            result = klimabot(*command, stdin="/help\n", unprivileged=True)
            assert result.returncode == 1, (command, result.stderr)
            assert result.stderr.count("\n") == 1, (command, result.stderr)
            assert expected in result.stderr, (command, result.stderr)
            assert "Traceback" not in result.stderr
            assert "geheim" not in result.stderr + result.stdout
    finally:
        klimabot.database.parent.chmod(0o755)
    assert not (klimabot.folder / "copy.db").exists()


def test_check_config_opens_the_database_but_creates_none(klimabot: Klimabot) -> None:
    result = klimabot("check-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"Datenbank: sqlite+aiosqlite:///{klimabot.database}\n"
        "Die Datenbankdatei gibt es noch nicht; der erste Befehl legt sie an.\n"
        "Telegram: aus (KLIMABOT_TELEGRAM_TOKEN ist nicht gesetzt)\n"
        "Matrix: aus (KLIMABOT_MATRIX_ACCESS_TOKEN ist nicht gesetzt)\n"
        "Die Konfiguration ist gültig.\n"
    )
    assert not klimabot.database.exists()
    klimabot("db", "upgrade")
    assert "Die Datenbank ist bereit.\n" in klimabot("check-config").stdout


def test_check_config_says_when_the_built_in_defaults_apply(klimabot: Klimabot) -> None:
    klimabot.config.unlink()
    result = klimabot("check-config")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "Hier gibt es keine config.yaml und kein --config: "
        "Es gelten die eingebauten Voreinstellungen.\n"
        f"Datenbank: sqlite+aiosqlite:///{klimabot.folder}/klimabot.db\n"
    )
    assert not (klimabot.folder / "klimabot.db").exists()


def test_check_config_masks_the_database_password(klimabot: Klimabot) -> None:
    klimabot.config.write_text(
        "database:\n  url: postgresql+asyncpg://klimabot:geheim@127.0.0.1:9/klimabot\n",
        encoding="utf-8",
    )
    result = klimabot("check-config")
    assert result.returncode == 1  # nothing listens there
    assert "Datenbank: postgresql+asyncpg://klimabot:***@127.0.0.1:9/klimabot\n" in result.stdout
    assert result.stderr.startswith(
        "klimabot: postgresql+asyncpg://klimabot:***@127.0.0.1:9/klimabot: "
        "Die Datenbank kann nicht benutzt werden: "
    )
    assert result.stderr.count("\n") == 1
    assert "geheim" not in result.stdout + result.stderr


WEBHOOK = "telegram:\n  mode: webhook\n  webhook_url: {url}\n"
TOKEN = {"KLIMABOT_TELEGRAM_TOKEN": "123456:TEST-TOKEN"}


@pytest.mark.parametrize(
    ("section", "secrets", "message"),
    [
        (
            "",
            {"KLIMABOT_MATRIX_ACCESS_TOKEN": "syt_access_token"},
            "Matrix braucht matrix.homeserver und matrix.user_id in der Konfiguration.",
        ),
        (
            WEBHOOK.format(url="https://bot.example.org/hook"),
            TOKEN,
            "Der Webhook-Modus braucht ein Geheimnis: "
            "Setzen Sie KLIMABOT_TELEGRAM_WEBHOOK_SECRET.",
        ),
        (
            WEBHOOK.format(url="http://bot.example.org/hook"),
            {**TOKEN, "KLIMABOT_TELEGRAM_WEBHOOK_SECRET": "a-long-webhook-secret"},
            "telegram.webhook_url muss eine https-Adresse sein: "
            "Telegram liefert Webhooks nur über https aus.",
        ),
    ],
)
def test_check_config_finds_what_run_would_refuse(
    klimabot: Klimabot, section: str, secrets: dict[str, str], message: str
) -> None:
    klimabot.config.write_text(
        klimabot.config.read_text(encoding="utf-8") + section, encoding="utf-8"
    )
    checked = klimabot("check-config", secrets=secrets)
    assert checked.returncode == 1
    assert checked.stderr == f"klimabot: {message}\n"
    assert "Die Konfiguration ist gültig." not in checked.stdout
    refused = klimabot("run", secrets=secrets)
    assert refused.returncode == 1
    assert refused.stderr == f"klimabot: {message}\n"
    assert not klimabot.database.exists()


@pytest.mark.parametrize("command", ["check-config", "run", "chat"])
def test_a_secret_too_short_to_hide_in_the_log_is_refused(
    klimabot: Klimabot, command: str
) -> None:
    result = klimabot(command, secrets={"KLIMABOT_MATRIX_PASSWORD": "x"})
    assert result.returncode == 1
    assert result.stderr == (
        "klimabot: KLIMABOT_MATRIX_PASSWORD ist zu kurz: Ein Geheimnis braucht mindestens "
        "8 Zeichen, damit das Log es sicher verbergen kann\n"
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_backups_are_for_the_owner_only(klimabot: Klimabot) -> None:
    with subprocess.Popen(
        klimabot.command("chat"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=klimabot.folder,
        env=klimabot.environment(),
        umask=0,
    ) as chat:
        assert chat.stdin is not None
        assert chat.stdout is not None
        chat.stdin.write("/subscribe\n")
        chat.stdin.flush()
        assert chat.stdout.readline() == "Abonniert.\n"  # written: the WAL is in use
        for name in ("klimabot.db", "klimabot.db-wal", "klimabot.db-shm"):
            assert mode(klimabot.database.parent / name) == 0o600, name
        chat.stdin.close()
        assert chat.wait(timeout=60) == 0
    assert klimabot("backup", "copy.db", umask=0).returncode == 0
    assert mode(klimabot.folder / "copy.db") == 0o600
