"""Structured logs: one JSON object per line, personal data masked."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from infra import log_context
from infra.masking import mask_text
from infra.settings import get_settings

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON; masks phone numbers and emails in every string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _clean(record.getMessage()),
        }
        # The ids of the message being processed (infra.middleware.log_context); extra= wins.
        entry.update(log_context.current())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _clean(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = _clean(self.formatException(record.exc_info))
        # Again on the whole line: a secret nested in a dict or list value is only text here.
        return redact_secrets(json.dumps(entry, default=str))


class MaskingFormatter(logging.Formatter):
    """Human-readable lines for a terminal, masked the same way."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(mask_text(super().format(record)))


#: Secret values (SecretStr settings, URL passwords) that must never appear in a log line.
_secrets: tuple[str, ...] = ()
#: Shorter values are not worth hunting for: they would blank out ordinary words.
_MIN_SECRET = 6


def register_secrets(settings: Any) -> None:
    """Remember every ``SecretStr`` value of ``settings`` (and the password of any URL among them).

    ``SecretStr`` already prints as ``**********``; this catches the value once it has been
    unwrapped (an error message quoting a URL, a provider echoing a token).
    """
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if "://" in secret:
                # A URL's secret is its password: the rest (host, database file) is fine to log.
                with suppress(ValueError):
                    found.add(urlsplit(secret).password or "")
            else:
                found.add(secret)
    global _secrets
    # Longest first, so a longer secret is replaced whole before a shorter one inside it.
    _secrets = tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True))


def _clean(text: str) -> str:
    return redact_secrets(mask_text(text))


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


_handler: logging.Handler | None = None


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger to stderr in the chosen format (idempotent); secrets are redacted."""
    register_secrets(get_settings())
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    global _handler
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = handler
    root.addHandler(handler)
    root.setLevel(level)
    # pika logs every refused connection at ERROR; herald's own errors say it better.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
