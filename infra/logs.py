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
from infra.settings import Settings

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
                entry[key] = _clean_value(value)
        if record.exc_info:
            entry["exc"] = _clean(self.formatException(record.exc_info))
        # Again on the whole line: a secret split across values is only whole here.
        return redact_secrets(json.dumps(entry, default=lambda value: _clean(str(value))))


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


#: Nesting of an ``extra=`` value walked item by item (log extras are ours, never this deep).
_MAX_DEPTH = 16


def _clean_value(value: Any, depth: int = 0) -> Any:
    """``value`` with every string in it masked, however deep in dicts and lists (an ``extra=``
    of recipients, a provider's answer); past a sane depth the rest is masked as text."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict | list | tuple) and depth >= _MAX_DEPTH:
        return _clean(str(value))
    if isinstance(value, dict):
        return {_clean(str(k)): _clean_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_value(v, depth + 1) for v in value]
    return value


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


_handler: logging.Handler | None = None


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record, not the one of set-up
    (a test runner's captured stream is closed when its test ends)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(settings: Settings, level: str | None = None, fmt: str | None = None) -> None:
    """Route every logger to stderr (idempotent), at ``level`` in ``fmt`` (by default the settings'
    ``HERALD_LOG_LEVEL`` and ``HERALD_LOG_FORMAT``); the settings' secrets are redacted."""
    level = level or settings.log_level
    fmt = fmt or settings.log_format
    register_secrets(settings)
    handler = _CurrentStderr()
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


#: The api's probes and scrapes: a successful one is not worth a line (one every few seconds).
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class AccessFields(logging.Filter):
    """Makes uvicorn's access line structured: ``client``, ``method``, ``path`` and ``status``
    as fields (the path masked like any text); drops successful probes and scrapes unless the
    access logger is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the fields; False for a line not worth logging."""
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):
            return True  # not the access line we know: logged as it is
        client, method, path, _http_version, status = args
        record.client, record.method, record.path, record.status = client, method, path, status
        quiet = str(path).partition("?")[0] in _QUIET_PATHS and isinstance(status, int) and status < 400
        return not quiet or logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """The ``log_config`` for ``uvicorn.run``: uvicorn's loggers get no handlers of their own, so
    every line they write (startup, tracebacks, access) goes to the root handler that
    :func:`configure_logging` installed: herald's format, masking and redaction."""
    own = {"handlers": [], "propagate": True, "level": level}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"access_fields": {"()": AccessFields}},
        "loggers": {
            "uvicorn": own,
            "uvicorn.error": own,
            "uvicorn.asgi": own,
            "uvicorn.access": {**own, "filters": ["access_fields"]},
        },
    }
