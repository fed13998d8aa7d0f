"""Webhook endpoint operations, the same for ``herald webhooks`` and the HTTP API (admin keys):
each checks its input first and names what is wrong (``Invalid``), and only ever touches the
given organisation's endpoints (another organisation's id is ``NotFound``)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from infra.bootstrap import Services
from infra.errors import Invalid, NotFound
from infra.store import webhooks as store
from producers.webhooks.sender import post
from workers.rules.webhooks import check_event_types, check_url

_ORG = re.compile(r"^[A-Za-z0-9_.:\-]{1,200}$")
_ENDPOINT = re.compile(r"^whe_[0-9a-f]{16}$")
TEST_EVENT = "webhook.test"


def check_org(org_id: str) -> str:
    """An organisation id as the event contract allows it (1-200 of ``A-Za-z0-9_.:-``)."""
    if not isinstance(org_id, str) or not _ORG.match(org_id):
        raise Invalid("org: 1-200 characters of letters, digits and _ . : -")
    return org_id


def _check_endpoint(endpoint_id: str) -> str:
    if not isinstance(endpoint_id, str) or not _ENDPOINT.match(endpoint_id):
        shown = repr(endpoint_id[:40]) if isinstance(endpoint_id, str) else "it"
        raise NotFound(f"endpoint: {shown} is not a webhook endpoint id (whe_ and 16 hex digits)")
    return endpoint_id


def _now() -> datetime:
    return datetime.now(UTC)


def add(services: Services, org_id: str, url: str, events: list[str] | None) -> dict[str, Any]:
    """Register an endpoint; its id and ``whsec_`` secret (shown once here, never logged)."""
    check_org(org_id)
    url = check_url(url)
    types = check_event_types(events)
    with services.transaction() as conn:
        endpoint_id, secret = store.add_endpoint(conn, org_id, url, types, _now())
    return {"endpoint_id": endpoint_id, "secret": secret, "url": url, "events": types}


def list_(services: Services, org_id: str) -> list[dict[str, Any]]:
    """The organisation's endpoints (no secrets)."""
    check_org(org_id)
    with services.reading() as conn:
        return store.list_endpoints(conn, org_id)


def remove(services: Services, org_id: str, endpoint_id: str) -> None:
    """Stop sending to an endpoint."""
    check_org(org_id)
    with services.transaction() as conn:
        store.remove_endpoint(conn, _check_endpoint(endpoint_id), org_id, _now())


def rotate(
    services: Services, org_id: str, endpoint_id: str, overlap_hours: float | None = None
) -> dict[str, Any]:
    """A new secret; the old one keeps signing for the overlap (``webhook_secret_overlap_hours``)."""
    check_org(org_id)
    hours = services.settings.webhook_secret_overlap_hours if overlap_hours is None else overlap_hours
    if not 0 <= hours <= 24 * 30:
        raise Invalid("overlap_hours: between 0 and 720")
    with services.transaction() as conn:
        secret, until = store.rotate_secret(
            conn, _check_endpoint(endpoint_id), org_id, timedelta(hours=hours), _now()
        )
    return {"endpoint_id": endpoint_id, "secret": secret, "previous_secrets_sign_until": until.isoformat()}


def resume(services: Services, org_id: str, endpoint_id: str) -> dict[str, Any]:
    """Unpause an endpoint: what waited is sent now, in order."""
    check_org(org_id)
    with services.transaction() as conn:
        pending = store.resume(conn, _check_endpoint(endpoint_id), org_id, _now())
    return {"endpoint_id": endpoint_id, "resumed": True, "pending": pending}


def replay(services: Services, org_id: str, endpoint_id: str, since: datetime) -> dict[str, Any]:
    """Send again everything since ``since`` (same ``webhook-id`` each)."""
    check_org(org_id)
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    if since > _now():
        raise Invalid("since: is in the future")
    with services.transaction() as conn:
        queued = store.replay(conn, _check_endpoint(endpoint_id), org_id, since, _now())
    return {"endpoint_id": endpoint_id, "queued": queued}


def deliveries(services: Services, org_id: str, endpoint_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The endpoint's latest attempts, newest first."""
    check_org(org_id)
    if not 1 <= limit <= 1000:
        raise Invalid("limit: between 1 and 1000")
    with services.reading() as conn:
        return store.attempts_of(conn, _check_endpoint(endpoint_id), org_id, limit)


def send_test(services: Services, org_id: str, endpoint_id: str) -> dict[str, Any]:
    """Send a signed ``webhook.test`` event now (not through the outbox, not retried); what the
    endpoint answered."""
    check_org(org_id)
    now = _now()
    with services.reading() as conn:
        endpoint = store.load_endpoint(conn, _check_endpoint(endpoint_id), org_id)
    msg_id = "msg_test_" + secrets.token_hex(12)
    payload = {
        "type": TEST_EVENT,
        "version": 1,
        "id": msg_id,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {"org_id": org_id, "endpoint_id": endpoint_id},
    }
    with requests.Session() as session:
        attempt = post(
            session,
            endpoint["url"],
            msg_id,
            payload,
            store.signing_secrets(endpoint, now),
            services.settings.webhook_timeout_seconds,
        )
    return {
        "endpoint_id": endpoint_id,
        "msg_id": msg_id,
        "ok": attempt.ok,
        "response": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }
