"""The ``klimabot`` command line: run the bot, chat on the console, manage the data."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import i18n, logs
from bot.app import App, SetupError, open_app, transports
from bot.config import Config, ConfigError, Secrets, load_config
from bot.core import Platform
from bot.i18n import _
from bot.transports.console import ConsoleTransport, InputFailed
from bot.transports.reconnect import CannotServe
from storage import db
from storage.demo import load_demo
from storage.exchange import (
    PROBLEM_MESSAGES,
    ImportFileError,
    ImportSummary,
    Problem,
    export_data,
    import_data,
    parse_import,
)

logger = logging.getLogger(__name__)

# The lines typed into `klimabot chat` in earlier chats, for the up arrow.
HISTORY = Path("~/.klimabot_history")


class Failure(Exception):
    """A command cannot do its job; the message is the one line the operator sees."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="configuration file (default: ./config.yaml)",
    )
    parser = argparse.ArgumentParser(
        prog="klimabot",
        description="Klimabot: the assistant of a climate network.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", parents=[common], help="serve all configured chat platforms")
    chat = commands.add_parser("chat", parents=[common], help="talk to the bot on this console")
    chat.add_argument(
        "--as",
        dest="role",
        choices=["member", "coordinator"],
        default="member",
        help="the console user's role (default: member)",
    )
    importing = commands.add_parser("import", parents=[common], help="import a YAML file")
    importing.add_argument("file", type=Path)
    exporting = commands.add_parser("export", parents=[common], help="export as YAML")
    exporting.add_argument("file", type=Path, nargs="?")
    database = commands.add_parser("db", parents=[common], help="database maintenance")
    database.add_argument("action", choices=["upgrade"])
    backup = commands.add_parser("backup", parents=[common], help="copy the live database")
    backup.add_argument("path", type=Path)
    commands.add_parser("check-config", parents=[common], help="validate the configuration")
    return parser


def _cli_language(config: Config | None) -> str:
    # Like gettext: the operator's environment first, then the network's language.
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        language = os.environ.get(variable, "")[:2].lower()
        if language in i18n.LANGUAGES:
            return language
    return config.network.language if config else i18n.LANGUAGES[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one klimabot command and return the process's exit status."""
    args = _parser().parse_args(argv)
    secrets = Secrets.from_environment()
    logs.configure(
        logging.INFO if args.command == "run" else logging.WARNING,
        [
            secrets.telegram_token,
            secrets.telegram_webhook_secret,
            secrets.matrix_access_token,
            secrets.matrix_password,
            secrets.matrix_pickle_key,
        ],
    )
    path: Path | None = getattr(args, "config", None)
    try:
        with i18n.using(i18n.localizer(_cli_language(None), i18n.current().timezone)):
            config = load_config(path)
    except ConfigError as error:
        with i18n.using(i18n.localizer(_cli_language(None), i18n.current().timezone)):
            for problem in error.problems:
                print(f"klimabot: {error.path}: {problem}", file=sys.stderr)
        return 1
    with i18n.using(i18n.localizer(_cli_language(config), config.network.zone)):
        try:
            return asyncio.run(_run_command(args, config))
        except (Failure, db.DatabaseError) as error:
            print(f"klimabot: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130


async def _run_command(args: argparse.Namespace, config: Config) -> int:
    if args.command == "check-config":
        return _check_config(config)
    if args.command == "db":
        return await _upgrade(config)
    extra = {(Platform.CONSOLE, "local")} if getattr(args, "role", "") == "coordinator" else set()
    app = await open_app(config, extra)
    try:
        if args.command == "chat":
            return await _chat(app)
        if args.command == "run":
            return await _serve(app)
        if args.command == "import":
            return await _import(app, args.file)
        if args.command == "export":
            return await _export(app, args.file)
        return await _backup(app, args.path)
    finally:
        await app.close()


def _check_config(config: Config) -> int:
    secrets = Secrets.from_environment()
    print(_("The configuration is valid."))
    print(_("Database: {url}").format(url=config.database.url))
    telegram = _("on") if secrets.telegram_token else _("off (KLIMABOT_TELEGRAM_TOKEN not set)")
    matrix_on = secrets.matrix_access_token or secrets.matrix_password
    matrix = _("on") if matrix_on else _("off (KLIMABOT_MATRIX_ACCESS_TOKEN not set)")
    print(_("Telegram: {state}").format(state=telegram))
    print(_("Matrix: {state}").format(state=matrix))
    return 0


async def _upgrade(config: Config) -> int:
    engine = db.create_engine(config.database.url)
    try:
        if await db.schema_state(engine) is db.SchemaState.UNKNOWN:
            raise Failure(_("The database was not created by Klimabot; nothing was changed."))
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    print(_("The database is up to date."))
    return 0


async def _chat(app: App) -> int:
    async with app.sessions() as session:
        today = dt.datetime.now(app.config.network.zone).date()
        if await load_demo(session, today, app.config.network.zone):
            await session.commit()
            print(_("A new database: the demo network is loaded."), file=sys.stderr)
    console = ConsoleTransport(
        app.dispatcher.handle, stdin=sys.stdin, stdout=sys.stdout, history=HISTORY
    )
    if console.interactive:
        print(_("Type /help to begin; Ctrl-D ends the chat."))
    async with app.serving():
        try:
            await console.start()
        except InputFailed as error:
            raise Failure(_("The input cannot be read: {error}").format(error=error)) from error
    return 0


async def _serve(app: App) -> int:
    try:
        running = transports(app, Secrets.from_environment())
    except SetupError as error:
        raise Failure(str(error)) from error
    if not running:
        raise Failure(
            _(
                "No chat platform is configured: set KLIMABOT_TELEGRAM_TOKEN or "
                "KLIMABOT_MATRIX_ACCESS_TOKEN (see the README), or try `klimabot chat`."
            )
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with app.serving():
        # Each platform connects on its own, retrying while its server does not answer, so
        # one that is down never keeps the others from serving.
        starting = [asyncio.create_task(transport.start()) for transport in running]
        stopping = asyncio.create_task(stop.wait())
        try:
            pending = set(starting)
            while pending and not stop.is_set():
                done, _still = await asyncio.wait(
                    {*pending, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done & pending:
                    task.result()
                pending -= done
            if not stop.is_set():
                print(_("Klimabot is running; stop it with Ctrl-C."), file=sys.stderr, flush=True)
                await stop.wait()
        except CannotServe as error:
            raise Failure(str(error)) from error
        finally:
            stopping.cancel()
            for task in starting:
                task.cancel()
            await asyncio.gather(stopping, *starting, return_exceptions=True)
            for transport in reversed(running):
                try:
                    await transport.stop()
                except Exception:
                    logger.exception("stopping the %s transport failed", transport.platform)
    return 0


async def _import(app: App, file: Path) -> int:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        message = _("{file}: cannot be read ({error})").format(file=file, error=error)
        raise Failure(message) from error
    try:
        data = parse_import(text, app.config.network.zone)
        async with app.sessions() as session:
            summary = await import_data(session, data)
            await session.commit()
    except ImportFileError as error:
        for problem in error.problems:
            print(f"klimabot: {file}: {describe_problem(problem)}", file=sys.stderr)
        if error.omitted:
            more = _("… and {count} more problems").format(count=error.omitted)
            print(f"klimabot: {file}: {more}", file=sys.stderr)
        raise Failure(_("{file}: nothing was imported.").format(file=file)) from error
    print(describe_summary(summary))
    return 0


async def _export(app: App, file: Path | None) -> int:
    async with app.sessions() as session:
        text = await export_data(session, app.config.network.zone)
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_text(text, encoding="utf-8")
    return 0


async def _backup(app: App, path: Path) -> int:
    await db.backup(app.engine, path)
    print(_("Backup written to {path}.").format(path=path))
    return 0


def describe_problem(problem: Problem) -> str:
    """Return where a problem of an import file is and what it is, translated."""
    return problem.message(_(PROBLEM_MESSAGES[problem.code]))


def describe_summary(summary: ImportSummary) -> str:
    """Return what an import did, one line per kind of entry."""
    if not summary.changed:
        return _("Nothing changed: everything in the file is stored already.")
    kinds = (
        (_("Partners"), summary.partners),
        (_("Meetings"), summary.meetings),
        (_("Tips"), summary.tips),
    )
    return "\n".join(
        _("{kind}: {created} new, {updated} updated, {unchanged} unchanged").format(
            kind=kind,
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
        )
        for kind, counts in kinds
    )
