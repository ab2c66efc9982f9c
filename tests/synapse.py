"""A real Synapse homeserver on 127.0.0.1 for tests: its install, config, process and users."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import aiohttp
import yaml

logger = logging.getLogger(__name__)

SYNAPSE_VERSION = "1.163.2"
SERVER_NAME = "localhost"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO_ROOT / ".cache"
REGISTRATION_SECRET = "klimabot-tests-only-registration-secret"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
INSTALL_TIMEOUT = 900.0
LOG_TAIL_LINES = 40

UNLIMITED = {"per_second": 10000, "burst_count": 100000}
# Every client-facing rate limit of Synapse 1.163 (synapse/config/ratelimiting.py), raised so
# that only the test that asks for it meets a limit.
RAISED_RATE_LIMITS: dict[str, Any] = {
    "rc_message": UNLIMITED,
    "rc_registration": UNLIMITED,
    "rc_registration_token_validity": UNLIMITED,
    "rc_login": {"address": UNLIMITED, "account": UNLIMITED, "failed_attempts": UNLIMITED},
    "rc_admin_redaction": UNLIMITED,
    "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
    "rc_joins_per_room": UNLIMITED,
    "rc_key_requests": UNLIMITED,
    "rc_3pid_validation": UNLIMITED,
    "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
    "rc_third_party_invite": UNLIMITED,
    "rc_media_create": UNLIMITED,
    "rc_presence": {"per_user": UNLIMITED},
    "rc_delayed_event_mgmt": UNLIMITED,
    "rc_room_creation": UNLIMITED,
    "rc_reports": UNLIMITED,
    "rc_user_directory": UNLIMITED,
    "rc_profile": UNLIMITED,
}
# Synapse's own rc_message default, for the one test that proves the bot honours it.
DEFAULT_MESSAGE_RATE = {"per_second": 0.2, "burst_count": 10}


def ensure_synapse_venv(cache: Path = DEFAULT_CACHE) -> Path:
    """Install Synapse into its own virtualenv under cache unless done; return its python."""
    venv = cache / "synapse-venv"
    python = venv / "bin" / "python"
    marker = venv / f".installed-matrix-synapse-{SYNAPSE_VERSION}"
    if marker.exists() and python.exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "synapse-venv.lock"):
        if marker.exists() and python.exists():
            return python
        started = time.monotonic()
        shutil.rmtree(venv, ignore_errors=True)
        log = cache / "synapse-venv-install.log"
        _run([sys.executable, "-m", "venv", str(venv)], log, INSTALL_TIMEOUT)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet"]
        _run([*pip, f"matrix-synapse=={SYNAPSE_VERSION}"], log, INSTALL_TIMEOUT)
        marker.write_text(f"{time.time()}\n")
        logger.info("Installed Synapse %s in %.1f s", SYNAPSE_VERSION, time.monotonic() - started)
    return python


def ensure_synapse_template(python: Path, cache: Path = DEFAULT_CACHE) -> Path:
    """Generate a homeserver.yaml and signing key once under cache; return their folder."""
    template = cache / f"synapse-template-{SYNAPSE_VERSION}"
    if (template / "homeserver.yaml").exists():
        return template
    with _locked(cache / "synapse-template.lock"):
        if (template / "homeserver.yaml").exists():
            return template
        scratch = cache / f"{template.name}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        command = [
            str(python),
            "-m",
            "synapse.app.homeserver",
            f"--server-name={SERVER_NAME}",
            f"--config-path={scratch / 'homeserver.yaml'}",
            f"--data-directory={scratch}",
            "--generate-config",
            "--report-stats=no",
        ]
        _run(command, cache / "synapse-template.log", 120.0, cwd=scratch)
        # The generated file names its folder; the overrides of every start point elsewhere.
        scratch.rename(template)
    return template


@dataclass(frozen=True)
class MatrixAccount:
    """A registered user with one logged-in device."""

    user_id: str
    username: str
    password: str
    access_token: str = field(repr=False)
    device_id: str


@dataclass
class Synapse:
    """One Synapse process on 127.0.0.1 with raised rate limits and a shared secret."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes]
    server_name: str = SERVER_NAME
    _admin_token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The base URL of the client-server API."""
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    async def start(
        cls,
        workdir: Path,
        *,
        default_message_rate_limit: bool = False,
        port: int | None = None,
        cache: Path = DEFAULT_CACHE,
    ) -> Self:
        """Start a homeserver whose data lives in workdir; ready when this returns."""
        return await asyncio.to_thread(
            cls.launch,
            workdir,
            default_message_rate_limit=default_message_rate_limit,
            port=port,
            cache=cache,
        )

    @classmethod
    def launch(
        cls,
        workdir: Path,
        *,
        default_message_rate_limit: bool = False,
        port: int | None = None,
        cache: Path = DEFAULT_CACHE,
    ) -> Self:
        """Start a homeserver, blocking until it answers; the synchronous form of start()."""
        python = ensure_synapse_venv(cache)
        workdir = workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        if not (workdir / "homeserver.yaml").exists():
            template = ensure_synapse_template(python, cache)
            for name in ("homeserver.yaml", f"{SERVER_NAME}.signing.key"):
                shutil.copy2(template / name, workdir / name)
        port = port or _free_port()
        _check_port_free(port)
        _write_overrides(workdir, port, default_message_rate_limit=default_message_rate_limit)
        console = (workdir / "console.log").open("ab")
        try:
            process = subprocess.Popen(
                [
                    str(python),
                    "-m",
                    "synapse.app.homeserver",
                    "-c",
                    str(workdir / "homeserver.yaml"),
                    "-c",
                    str(workdir / "overrides.yaml"),
                ],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env=_clean_environment(),
            )
        finally:
            console.close()
        synapse = cls(workdir, port, process)
        try:
            synapse._wait_ready()
        except BaseException:
            synapse.terminate()
            raise
        return synapse

    async def stop(self) -> None:
        """Stop the homeserver: SIGTERM, then SIGKILL if it lingers."""
        await asyncio.to_thread(self.terminate)

    def terminate(self) -> None:
        """Stop the homeserver, blocking; the synchronous form of stop()."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("Synapse on port %d ignored SIGTERM; killing it", self.port)
                self.process.kill()
        self.process.wait()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the homeserver's log and console output, for failure messages."""
        parts = []
        for name in ("homeserver.log", "console.log"):
            path = self.workdir / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(tail))
        return "\n".join(parts)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        url = f"{self.url}/_matrix/client/versions"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Synapse exited with {self.process.returncode} while starting\n"
                    + self.log_tail()
                )
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"Synapse did not answer {url} within {START_TIMEOUT:.0f} s\n" + self.log_tail()
        )

    async def register(
        self, username: str, password: str, *, admin: bool = False
    ) -> tuple[str, str, str]:
        """Register a user with the shared secret; return user id, access token and device id."""
        url = f"{self.url}/_synapse/admin/v1/register"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                response.raise_for_status()
                nonce = (await response.json())["nonce"]
            mac = hmac.new(REGISTRATION_SECRET.encode(), digestmod=hashlib.sha1)
            for part in (nonce, username, password):
                mac.update(part.encode())
                mac.update(b"\x00")
            mac.update(b"admin" if admin else b"notadmin")
            body = {
                "nonce": nonce,
                "username": username,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            async with session.post(url, json=body) as response:
                answer = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"Registering {username} failed: {answer}")
        return answer["user_id"], answer["access_token"], answer["device_id"]

    async def limit_messages(self, user_id: str, *, per_second: int, burst_count: int) -> None:
        """Give one user its own message rate limit (whole messages per second only)."""
        if self._admin_token is None:
            _, self._admin_token, _ = await self.register(
                "harness-admin", "harness-admin-password", admin=True
            )
        url = f"{self.url}/_synapse/admin/v1/users/{quote(user_id, safe='')}/override_ratelimit"
        body = {"messages_per_second": per_second, "burst_count": burst_count}
        headers = {"Authorization": f"Bearer {self._admin_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json=body, headers=headers) as response,
        ):
            if response.status != 200:
                raise RuntimeError(f"Limiting {user_id} failed: {await response.text()}")


def _write_overrides(workdir: Path, port: int, *, default_message_rate_limit: bool) -> None:
    log_config = {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                "%(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(workdir / "homeserver.log"),
                "encoding": "utf8",
            }
        },
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }
    (workdir / "log.config").write_text(yaml.safe_dump(log_config))
    limits = dict(RAISED_RATE_LIMITS)
    if default_message_rate_limit:
        limits["rc_message"] = DEFAULT_MESSAGE_RATE
    overrides = {
        "server_name": SERVER_NAME,
        "pid_file": str(workdir / "homeserver.pid"),
        "signing_key_path": str(workdir / f"{SERVER_NAME}.signing.key"),
        "media_store_path": str(workdir / "media_store"),
        "database": {"name": "sqlite3", "args": {"database": str(workdir / "homeserver.db")}},
        "log_config": str(workdir / "log.config"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "registration_shared_secret": REGISTRATION_SECRET,
        "enable_registration": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "presence": {"enabled": False},
        "report_stats": False,
        # The fewest rounds bcrypt allows: registration and login in milliseconds.
        "bcrypt_rounds": 4,
        **limits,
    }
    (workdir / "overrides.yaml").write_text(
        yaml.dump(overrides, Dumper=_PlainDumper, sort_keys=False)
    )


class _PlainDumper(yaml.SafeDumper):
    """Writes the rate limits out in full rather than as YAML anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _check_port_free(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise RuntimeError(f"Port {port} is taken: a stale server would answer") from error


def _clean_environment() -> dict[str, str]:
    # Synapse's virtualenv must not see the project's interpreter settings.
    hidden = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {key: value for key, value in os.environ.items() if key not in hidden}


def _run(command: list[str], log: Path, timeout: float, cwd: Path | None = None) -> None:
    with log.open("ab") as output:
        output.write(f"$ {' '.join(command)}\n".encode())
        output.flush()
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=_clean_environment(),
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:])
        raise RuntimeError(f"{command[:4]} failed with {result.returncode}\n{tail}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Parallel test processes (xdist, two checkouts' CI) install the same cache only once.
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> None:
    """Install Synapse and its config template ahead of the tests, as CI does."""
    started = time.monotonic()
    template = ensure_synapse_template(ensure_synapse_venv())
    print(f"Synapse {SYNAPSE_VERSION} ready in {time.monotonic() - started:.1f} s: {template}")


if __name__ == "__main__":
    main()
