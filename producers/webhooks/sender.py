"""One signed webhook request (Standard Webhooks, with the ``standardwebhooks`` library)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from infra.store.webhooks import Attempt
from workers.rules.webhooks import retry_after_seconds

USER_AGENT = "herald-webhooks/1"


def encode(payload: dict[str, Any]) -> bytes:
    """The body as sent and signed: compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(msg_id: str, body: bytes, secrets: Sequence[str], now: datetime) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one ``v1,…`` per secret, so
    during a rotation's overlap either secret verifies)."""
    signatures = " ".join(Webhook(s).sign(msg_id=msg_id, timestamp=now, data=body) for s in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def post(
    session: requests.Session,
    url: str,
    msg_id: str,
    payload: dict[str, Any],
    secrets: Sequence[str],
    timeout: float,
) -> Attempt:
    """POST one event; what came of it (never raises for the endpoint's failures). Redirects are
    not followed: a 3xx is a failed attempt, like any other non-2xx."""
    body = encode(payload)
    now = datetime.now(UTC)
    headers = signed_headers(msg_id, body, secrets, now)
    started = time.monotonic()
    try:
        response = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]  # endpoint URLs carry no credentials
        return Attempt(None, False, error, None, _ms(started))
    code = response.status_code
    response.close()
    retry_after = retry_after_seconds(response.headers.get("Retry-After"), datetime.now(UTC))
    ok = 200 <= code < 300
    return Attempt(code, ok, None if ok else f"HTTP {code}", retry_after, _ms(started))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
