"""Matrix HTTP with the homeserver's rate limits honoured: wait retry_after_ms, then retry."""

from __future__ import annotations

import asyncio
import logging
from json import JSONDecodeError
from typing import Any

from aiohttp import ClientResponse, ClientSession, ClientTimeout, ContentTypeError
from mautrix.api import HTTPAPI, Method
from mautrix.errors import make_request_error
from yarl import URL

logger = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 20
DEFAULT_WAIT_MS = 1000
# A homeserver that does not answer is noticed in seconds, not after aiohttp's five minutes;
# reads wait longer than a sync is held open (30 s) when nothing happens.
TIMEOUT = ClientTimeout(total=None, sock_connect=10, sock_read=90)


class PacedHTTPAPI(HTTPAPI):
    """mautrix's HTTP API, but a 429 (M_LIMIT_EXCEEDED) waits as long as asked and retries.

    Retrying a send is safe: it repeats the same transaction id, so the homeserver stores
    the message once.
    """

    def __init__(self, base_url: str, token: str = "") -> None:
        session = ClientSession(timeout=TIMEOUT, headers={"User-Agent": self.default_ua})
        super().__init__(base_url, token, client_session=session)

    async def _send(
        self,
        method: Method,
        url: URL,
        content: Any,
        query_params: dict[str, str],
        headers: dict[str, str],
    ) -> tuple[Any, ClientResponse]:
        retryable = isinstance(content, bytes | bytearray | str) or content is None
        for _attempt in range(RATE_LIMIT_RETRIES):
            request = self.session.request(
                str(method), url, data=content, params=query_params, headers=headers
            )
            async with request as response:
                if 200 <= response.status < 300:
                    return await response.json(), response
                data = await _json(response)
                if response.status == 429 and retryable:
                    wait = float(data.get("retry_after_ms") or DEFAULT_WAIT_MS) / 1000
                    logger.info("Matrix: rate limited, waiting %.1f s", wait)
                    await asyncio.sleep(wait)
                    continue
                raise make_request_error(
                    http_status=response.status,
                    text=await response.text(),
                    errcode=data.get("errcode"),
                    message=data.get("error"),
                    unstable_errcode=data.get("org.matrix.msc3848.unstable.errcode"),
                )
        raise make_request_error(429, "", "M_LIMIT_EXCEEDED", "still rate limited")


async def _json(response: ClientResponse) -> dict[str, Any]:
    try:
        data = await response.json(content_type=None)
    except (JSONDecodeError, ContentTypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
