"""Bot API requests over aiohttp: python-telegram-bot's networking backend for this transport.

python-telegram-bot talks HTTP through a replaceable ``BaseRequest``; its default uses httpx,
whose connection pool scans every connection on every request and, with httpcore 1.0, looks
for ``sniffio`` each time it makes a lock. Under a burst of replies that costs more CPU than
the bot's own work. aiohttp (which the Matrix transport uses anyway) keeps a cheap pool; this
class follows the ``AiohttpRequest`` of the python-telegram-bot team's ptbcontrib.
"""

from __future__ import annotations

import math
import ssl
import urllib.request
from urllib.parse import urlsplit

import aiohttp
import certifi
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

JSON = "application/json"


class AiohttpRequest(BaseRequest):
    """Send Bot API requests through one aiohttp session with a bounded connection pool.

    Timeouts mean what they mean for python-telegram-bot's httpx backend: ``pool`` for a free
    connection, ``connect`` for a new one, ``read`` for the response (get_updates adds its long
    poll to it), ``write`` for sending the request; requests with files get
    ``media_write_timeout``.
    """

    __slots__ = (
        "_connect",
        "_connections",
        "_media_write",
        "_pool",
        "_proxies",
        "_read",
        "_session",
        "_write",
    )

    def __init__(
        self,
        connection_pool_size: int = 8,
        *,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        pool_timeout: float = 1.0,
        media_write_timeout: float = 20.0,
    ) -> None:
        self._connections = connection_pool_size
        self._read, self._write = read_timeout, write_timeout
        self._connect, self._pool = connect_timeout, pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float:
        """The default time to wait for a response."""
        return self._read

    async def initialize(self) -> None:
        """Open the session in the running event loop (again after a shutdown)."""
        if self._session is None or self._session.closed:
            # As with python-telegram-bot's httpx backend: certifi's certificate authorities.
            trusted = ssl.create_default_context(cafile=certifi.where())
            connector = aiohttp.TCPConnector(
                limit=self._connections, limit_per_host=0, ssl=trusted
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
            )

    async def shutdown(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(  # noqa: PLR0917 (the signature is BaseRequest's)
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request and return the HTTP status and the body."""
        if self._session is None or self._session.closed:
            raise RuntimeError("the Bot API request backend is not initialized")
        files = request_data is not None and request_data.contains_files
        read = _seconds(read_timeout, self._read)
        write = _seconds(write_timeout, self._media_write if files else self._write)
        connect = _seconds(connect_timeout, self._connect)
        pool = _seconds(pool_timeout, self._pool)
        # aiohttp has no write timeout: the whole request may take its parts' sum.
        parts = (read, write, connect, pool)
        total = None if None in parts else math.fsum(p for p in parts if p is not None)
        timeout = aiohttp.ClientTimeout(
            total=total, connect=pool, sock_connect=connect, sock_read=read
        )
        body: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] = {}
        if request_data is not None and files:
            body = aiohttp.FormData(request_data.json_parameters)
            for name, (filename, content, mime_type) in request_data.multipart_data.items():
                body.add_field(name, content, filename=filename, content_type=mime_type)
        elif request_data is not None and request_data.parameters:
            body = request_data.json_payload
            headers["Content-Type"] = JSON
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout, proxy=self._proxy(url)
            ) as response:
                return response.status, await response.read()
        except aiohttp.ConnectionTimeoutError as error:
            raise TimedOut(
                "no connection to the Bot API in time; the request was not sent"
            ) from error
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error

    def _proxy(self, url: str) -> str | None:
        # The proxy the environment names (HTTPS_PROXY, NO_PROXY), as httpx would use it; read
        # once per host, because aiohttp's trust_env reads the environment on every request.
        where = urlsplit(url)
        key = (where.scheme, where.hostname or "")
        if key not in self._proxies:
            bypass = urllib.request.proxy_bypass(key[1])
            self._proxies[key] = None if bypass else urllib.request.getproxies().get(key[0])
        return self._proxies[key]


def _seconds(value: object, default: float) -> float | None:
    """Return a timeout python-telegram-bot passed: its value, or ours when it passed none."""
    if value is BaseRequest.DEFAULT_NONE:
        return default
    if value is None or isinstance(value, int | float):
        return value
    raise TypeError(f"a timeout must be a number of seconds or None, not {value!r}")
