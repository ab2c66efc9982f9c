"""Logging for the process: one format, and no secret ever written to a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterable

REDACTED = "[secret]"


class RedactSecrets(logging.Filter):
    """Replace secrets (such as the bot token in request URLs) in messages and tracebacks."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record with the secrets replaced; never drop it."""
        if not self.secrets:
            return True
        message = self._redact(record.getMessage())
        if message != record.msg or record.args:
            record.msg, record.args = message, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure(level: int, secrets: Iterable[str | None]) -> None:
    """Log to stderr at the given level, with secrets redacted from every record."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, and Telegram's URLs contain the token.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
