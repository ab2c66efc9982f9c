"""The ``klimabot`` command line: run the bot, chat on the console, manage the data."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import errno
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot import i18n, logs
from bot.app import (
    App,
    SetupError,
    calendar_feed,
    delivery_worker,
    open_app,
    reminder_planner,
    transports,
)
from bot.config import (
    DEFAULT_PATH,
    Config,
    ConfigError,
    SecretError,
    Secrets,
    load_config,
    setup_problems,
)
from bot.core import Platform
from bot.i18n import _
from bot.transports.console import ConsoleTransport, InputFailed
from bot.transports.reconnect import CannotServe
from storage import db
from storage.demo import load_demo
from storage.exchange import (
    PROBLEM_MESSAGES,
    Counts,
    ImportFileError,
    ImportSummary,
    Problem,
    export_data,
    import_file,
)

logger = logging.getLogger(__name__)
# Seconds the sends in flight may take to finish when the bot stops.
STOP_WITHIN = 30.0

# An import this large reports its progress while writing.
PROGRESS_FROM = 10_000

# The lines typed into `klimabot chat` in earlier chats, for the up arrow.
HISTORY = Path("~/.klimabot_history")
# Where `klimabot chat` saves the files the bot sends, beside the database.
FILES = "klimabot-files"


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
    exporting.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
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
    path: Path | None = getattr(args, "config", None)
    with i18n.using(i18n.localizer(_cli_language(None), i18n.current().timezone)):
        try:
            config = load_config(path)
        except ConfigError as error:
            for problem in error.problems:
                print(f"klimabot: {error.path}: {problem}", file=sys.stderr)
            return 1
    with i18n.using(i18n.localizer(_cli_language(config), config.network.zone)):
        try:
            secrets = Secrets.from_environment()
        except SecretError as error:
            print(f"klimabot: {error}", file=sys.stderr)
            return 1
        logs.configure(
            logging.INFO if args.command == "run" else logging.WARNING,
            secrets.values(),
        )
        try:
            return asyncio.run(_run_command(args, config))
        except Failure as error:
            print(f"klimabot: {error}", file=sys.stderr)
            return 1
        except db.DatabaseError as error:
            print(f"klimabot: {describe_database_error(error)}", file=sys.stderr)
            return 1
        except DBAPIError as error:  # e.g. still locked by another process after the wait
            explained = db.explain(error, config.database.url)
            print(f"klimabot: {describe_database_error(explained)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130


async def _run_command(args: argparse.Namespace, config: Config) -> int:
    if args.command == "check-config":
        return await _check_config(config, getattr(args, "config", None))
    if args.command == "db":
        return await _upgrade(config)
    if args.command == "backup":
        return await _backup(config, args.path)
    if args.command == "run" and (problems := setup_problems(config, Secrets.from_environment())):
        raise Failure(problems[0])  # before the database is opened or created
    extra = {(Platform.CONSOLE, "local")} if getattr(args, "role", "") == "coordinator" else set()
    app = await open_app(config, extra)
    try:
        if args.command == "chat":
            return await _chat(app)
        if args.command == "run":
            return await _serve(app)
        if args.command == "import":
            return await _import(app, args.file)
        return await _export(app, args.file, args.force)
    finally:
        await app.dispatcher.settled()
        await app.close()


def describe_database_error(error: db.DatabaseError) -> str:
    """Return what is wrong with the database and what to do, translated."""
    return error.message(_(db.MESSAGES[error.code]))


async def _check_config(config: Config, path: Path | None) -> int:
    secrets = Secrets.from_environment()
    if path is None and not DEFAULT_PATH.exists():
        print(
            _("No {file} here and no --config: the built-in defaults apply.").format(
                file=DEFAULT_PATH
            )
        )
    problems = setup_problems(config, secrets)
    url = config.database.url
    print(_("Database: {url}").format(url=make_url(url).render_as_string(hide_password=True)))
    try:
        state = await db.inspect_database(url)
    except db.DatabaseError as error:
        problems.append(describe_database_error(error))
    else:
        if state is None:
            print(_("The database file does not exist yet; the first command creates it."))
        elif state is db.SchemaState.EMPTY:
            print(_("The database is empty; the first command creates its tables."))
        elif state is db.SchemaState.CURRENT:
            print(_("The database is ready."))
        else:
            code = "behind" if state is db.SchemaState.BEHIND else "unknown"
            problems.append(_(db.MESSAGES[code]).format(database=db.shown(url)))
    telegram = _("on") if secrets.telegram_token else _("off (KLIMABOT_TELEGRAM_TOKEN not set)")
    matrix_on = secrets.matrix_access_token or secrets.matrix_password
    matrix = _("on") if matrix_on else _("off (KLIMABOT_MATRIX_ACCESS_TOKEN not set)")
    print(_("Telegram: {state}").format(state=telegram))
    print(_("Matrix: {state}").format(state=matrix))
    for problem in problems:
        print(f"klimabot: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(_("The configuration is valid."))
    return 0


async def _upgrade(config: Config) -> int:
    url = config.database.url
    db.prepare(url)
    engine = db.create_engine(url, busy_timeout=config.database.busy_timeout)
    try:
        if await db.schema_state(engine) is db.SchemaState.UNKNOWN:
            raise Failure(_("The database was not created by Klimabot; nothing was changed."))
        await db.upgrade(engine)
    finally:
        await engine.dispose()
    print(_("The database is up to date."))
    return 0


async def _chat(app: App) -> int:
    if app.created:  # never into a database someone made for production
        async with app.sessions() as session:
            today = dt.datetime.now(app.config.network.zone).date()
            if await load_demo(session, today, app.config.network.zone):
                await session.commit()
                print(_("A new database: the demo network is loaded."), file=sys.stderr)
    database = db.sqlite_file(app.config.database.url)
    console = ConsoleTransport(
        app.dispatcher.handle,
        stdin=sys.stdin,
        stdout=sys.stdout,
        history=HISTORY,
        files=(database.parent if database else Path()) / FILES,
    )
    if console.interactive:
        print(_("Type /help to begin; Ctrl-D ends the chat."))
    worker = delivery_worker(app, [console])
    async with _working(worker, reminder_planner(app)):
        try:
            await console.start()
        except InputFailed as error:
            raise Failure(_("The input cannot be read: {error}").format(error=error)) from error
        # What the chat queued for the console (an announcement to oneself) is shown first.
        await worker.send_due()
    return 0


class Job(Protocol):
    """Work that runs beside the transports: the delivery worker, the reminder planner."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def _working(*jobs: Job) -> AsyncIterator[None]:
    """Run the jobs meanwhile; on the way out, let what they have in hand finish."""
    tasks = [asyncio.create_task(job.run()) for job in jobs]
    try:
        yield
    finally:
        for job in jobs:
            job.stop()
        _done, late = await asyncio.wait(tasks, timeout=STOP_WITHIN)
        for task in late:
            logger.warning("a background job did not finish in time")
            task.cancel()


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
    feed = calendar_feed(app)
    if feed is not None:
        try:
            await feed.start()
        except OSError as error:
            message = _("The calendar feeds cannot listen on {address}: {error}")
            address = f"{feed.listen}:{feed.port}"
            reason = error.strerror or str(error)
            raise Failure(message.format(address=address, error=reason)) from error
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
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
            # Pushes start once every platform serves; until then they wait in the outbox.
            async with _working(delivery_worker(app, running), reminder_planner(app)):
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
        if feed is not None:
            await feed.stop()
    return 0


async def _import(app: App, file: Path) -> int:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        message = _("{file}: cannot be read ({error})").format(file=file, error=error)
        raise Failure(message) from error

    def progress(done: int, total: int) -> None:
        if total >= PROGRESS_FROM:
            line = _("Writing: {done} of {total} entries").format(done=done, total=total)
            print(f"klimabot: {file}: {line}", file=sys.stderr, flush=True)

    try:
        summary = await import_file(app.sessions, text, app.config.network.zone, progress)
    except ImportFileError as error:
        for problem in error.problems:
            print(f"klimabot: {file}: {describe_problem(problem)}", file=sys.stderr)
        if error.omitted:
            more = _("… and {count} more problems").format(count=error.omitted)
            print(f"klimabot: {file}: {more}", file=sys.stderr)
        raise Failure(_("{file}: nothing was imported.").format(file=file)) from error
    print(describe_summary(summary))
    return 0


async def _export(app: App, file: Path | None, force: bool) -> int:
    async with app.sessions() as session:
        text = await export_data(session, app.config.network.zone)
    if file is None:
        sys.stdout.write(text)
        return 0
    if file.exists() and not force:
        message = _("{file} exists already; add --force to overwrite it")
        raise Failure(message.format(file=file))
    try:
        _write_whole(file, text)
    except OSError as error:
        raise Failure(describe_write_error(file, error)) from error
    return 0


def _write_whole(file: Path, text: str) -> None:
    """Write a file completely or not at all; a device such as /dev/stdout is written directly."""
    if file.exists() and not file.is_file():
        file.write_text(text, encoding="utf-8")
        return
    partial = file.with_name(f".{file.name}.{os.getpid()}.part")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)


def describe_write_error(file: Path, error: OSError) -> str:
    """Return why a file could not be written, translated."""
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        folder = file.parent
        return _("{file}: the folder {folder} does not exist").format(file=file, folder=folder)
    if error.errno == errno.EISDIR:
        return _("{file}: is a folder, not a file").format(file=file)
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return _("{file}: not enough space on the disk").format(file=file)
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return _("{file}: no permission to write there").format(file=file)
    reason = error.strerror or str(error)
    return _("{file}: cannot be written ({error})").format(file=file, error=reason)


async def _backup(config: Config, path: Path) -> int:
    # Whatever the schema's version: a backup comes before `klimabot db upgrade`.
    await db.backup(config.database.url, path, busy_timeout=config.database.busy_timeout)
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
        # Only files with series say so; the others read as they always did.
        *(((_("Meeting series"), summary.series),) if summary.series != Counts() else ()),
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
