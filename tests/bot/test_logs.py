"""Logging: a secret never reaches a log line, not even inside a traceback."""

import logging
from collections.abc import Iterator

import pytest

from bot.logs import RedactSecrets

TOKEN = "123456:ABC-secret-token"


@pytest.fixture
def records() -> Iterator[list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    handler.addFilter(RedactSecrets([TOKEN, None]))
    logger = logging.getLogger("httpx.test")
    logger.addHandler(handler)
    logger.propagate = False
    yield lines
    logger.removeHandler(handler)


def test_a_request_url_with_the_token_is_redacted(records: list[str]) -> None:
    logging.getLogger("httpx.test").warning(
        'HTTP Request: POST %s "HTTP/1.1 200 OK"', f"https://api.telegram.org/bot{TOKEN}/getMe"
    )
    assert records == [
        "httpx.test HTTP Request: POST https://api.telegram.org/bot[secret]/getMe "
        '"HTTP/1.1 200 OK"'
    ]


def test_a_traceback_with_the_token_is_redacted(records: list[str]) -> None:
    try:
        raise ConnectionError(f"cannot reach /bot{TOKEN}/getUpdates")
    except ConnectionError:
        logging.getLogger("httpx.test").exception("failed")
    assert TOKEN not in records[0]
    assert "/bot[secret]/getUpdates" in records[0]
