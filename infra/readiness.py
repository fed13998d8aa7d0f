"""Readiness: do the broker and the database answer, within a short timeout?

Each check opens its own short-lived connection when asked (never at import), runs in a
thread of its own and is given ``timeout`` seconds: a hung check reports a time-out instead
of hanging the probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, text

from infra import amqp_nodes
from infra.masking import mask_text
from infra.settings import Settings

#: A check: raises when its dependency does not answer.
Check = Callable[[], None]


@dataclass(frozen=True)
class CheckResult:
    """One dependency's answer: ``ok``, how long it took, and the error when not ok."""

    name: str
    ok: bool
    seconds: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON for ``/readyz``."""
        out: dict[str, Any] = {"ok": self.ok, "seconds": round(self.seconds, 3)}
        if self.error:
            out["error"] = self.error
        return out


def run_checks(checks: dict[str, Check], timeout: float) -> list[CheckResult]:
    """Run every check at once; each gets ``timeout`` seconds."""
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readiness")
    started = time.monotonic()
    futures = {name: pool.submit(_timed, check) for name, check in checks.items()}
    results = []
    for name, future in futures.items():
        left = max(0.0, timeout - (time.monotonic() - started))
        try:
            seconds = future.result(timeout=left)
            results.append(CheckResult(name, True, seconds))
        except FutureTimeout:
            results.append(CheckResult(name, False, timeout, f"no answer within {timeout:g}s"))
        except Exception as exc:
            # Error texts can quote hosts and URLs: mask them as the logs do.
            error = mask_text(f"{type(exc).__name__}: {exc}".strip())[:300]
            results.append(CheckResult(name, False, time.monotonic() - started, error))
    pool.shutdown(wait=False)  # a hung check's thread ends on its own socket timeout
    return results


def _timed(check: Check) -> float:
    started = time.monotonic()
    check()
    return time.monotonic() - started


def broker_check(amqp_url: str | Sequence[str], timeout: float) -> Check:
    """Open and close an AMQP connection, to the first of the nodes that answers (a cluster is
    ready while one of its nodes is)."""
    urls = [amqp_url] if isinstance(amqp_url, str) else list(amqp_url)

    def check() -> None:
        amqp_nodes.connect(urls, timeout=timeout).close()

    return check


class DatabaseCheck:
    """``SELECT 1`` on one engine of its own, built on the first check (not at import)."""

    def __init__(self, url: str, timeout: float) -> None:
        self._url = url
        self._timeout = timeout
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    def _get_engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                if self._url.startswith("sqlite"):
                    connect_args: dict[str, Any] = {"timeout": self._timeout}
                else:  # PostgreSQL (psycopg): seconds, at least 1
                    connect_args = {"connect_timeout": max(1, int(self._timeout))}
                self._engine = create_engine(self._url, connect_args=connect_args, pool_pre_ping=True)
            return self._engine

    def __call__(self) -> None:
        with self._get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        """Close the engine's connections."""
        if self._engine is not None:
            self._engine.dispose()


def default_checks(settings: Settings) -> dict[str, Check]:
    """The broker and the database of these settings."""
    timeout = settings.readiness_timeout_seconds
    return {
        "broker": broker_check(settings.amqp_urls, timeout),
        "database": DatabaseCheck(settings.database_url.get_secret_value(), timeout),
    }
