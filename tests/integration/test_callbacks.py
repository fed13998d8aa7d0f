"""Twilio status callbacks: verified, then history moves the notification on, forward only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from infra.bootstrap import Services
from infra.store.directory import upsert_customer
from infra.store.tables import notifications, status_changes
from producers.api.app import create_app
from producers.publisher import Publisher
from schemas.directory import CustomerRecord
from tests.conftest import settings_of, wait_for
from tests.factories import customer, invoice_created
from tooling.local.ports import free_port


@pytest.fixture
def public_url() -> str:
    """A free port's URL, the public URL Twilio calls back to."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def pipeline_fields(public_url: str) -> dict[str, Any]:
    """The pipeline's SMS name the api's callback URL."""
    return {"public_url": public_url}


@pytest.fixture
def api_url(public_url: str, herald_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[str]:
    """The HTTP app at the public URL: on the pipeline's services when the test runs one."""
    if "pipeline" in request.fixturenames:
        services: Services = request.getfixturevalue("pipeline")
        app = create_app(services.settings, services)
    else:
        app = create_app(settings_of(herald_env, public_url=public_url))
    port = urlsplit(public_url).port
    assert port is not None
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the HTTP app")
    yield public_url
    server.should_exit = True
    thread.join(10)


def _status(services: Services) -> str | None:
    with services.transaction() as conn:
        return conn.execute(select(notifications.c.status).where(notifications.c.channel == "sms")).scalar()


def test_a_callback_without_a_valid_signature_is_refused_with_403(api_url: str) -> None:
    body = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert httpx.post(f"{api_url}/callbacks/twilio/ntf_0", data=body).status_code == 403
    forged = httpx.post(
        f"{api_url}/callbacks/twilio/ntf_0", data=body, headers={"X-Twilio-Signature": "bm90IGl0"}
    )
    assert forged.status_code == 403


def test_signed_callbacks_move_the_notification_to_delivered_and_a_late_sent_changes_nothing(
    api_url: str, pipeline: Services, twilio_sandbox: Any
) -> None:
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer()), region="FI")
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(invoice_created())
    wait_for(
        lambda: _status(pipeline) == "delivered", timeout=30, what="delivered via the sandbox's callbacks"
    )

    with pipeline.transaction() as conn:
        nid, sid = conn.execute(
            select(notifications.c.id, notifications.c.provider_id).where(notifications.c.channel == "sms")
        ).one()
    url = f"{api_url}/callbacks/twilio/{nid}"
    token = pipeline.settings.twilio_auth_token
    assert token is not None
    for late_status in ("sent", "undelivered"):  # out of order, after delivered
        late = {"MessageSid": sid, "MessageStatus": late_status}
        signature = RequestValidator(token.get_secret_value()).compute_signature(url, late)
        assert httpx.post(url, data=late, headers={"X-Twilio-Signature": signature}).status_code == 204

    def reported() -> bool:  # history has processed the late reports: it keeps every report once
        with pipeline.transaction() as conn:
            rows = conn.execute(
                select(status_changes.c.status).where(status_changes.c.notification_id == nid)
            )
            return "undelivered" in {r.status for r in rows}

    wait_for(reported, timeout=30, what="the late reports recorded")
    assert _status(pipeline) == "delivered"  # and the notification never moved back
    with pipeline.transaction() as conn:
        late_detail = conn.execute(
            select(status_changes.c.detail).where(
                status_changes.c.notification_id == nid, status_changes.c.status == "undelivered"
            )
        ).scalar()
    assert late_detail == "ignored: already delivered"  # the timeline says it changed nothing


def test_a_status_report_waits_out_a_broker_that_is_away_for_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    from dramatiq.errors import ConnectionClosed

    from producers.api.callbacks import publish_patiently
    from schemas.messages import DeliveryStatusReported
    from schemas.notifications import Status

    report = DeliveryStatusReported(
        notification_id="ntf_1",
        status=Status.DELIVERED,
        source="twilio_callback",
        occurred_at=datetime.now(UTC),
    )
    failures = iter([True, True, False])
    published: list[DeliveryStatusReported] = []

    def emit(message: DeliveryStatusReported) -> None:
        if next(failures, False):
            raise ConnectionClosed(OSError("connection refused"))
        published.append(message)

    assert publish_patiently(emit, report, patience=5)  # back after two refusals
    assert published == [report]

    def down(message: DeliveryStatusReported) -> None:
        raise ConnectionClosed(OSError("connection refused"))

    assert not publish_patiently(down, report, patience=0.5)  # the api answers 503 then
