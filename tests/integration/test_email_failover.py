"""Failover between SMTP relays: the first relay (``HERALD_SMTP_HOST``) refuses connections, the
second (``HERALD_SMTP_RELAYS``, the SMTP sandbox) takes every email, each once; the first relay's
breaker opens and the attempt log shows each relay's try."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.attempts import load_attempts
from infra.store.breakers import all_breakers
from infra.store.tables import notifications
from schemas.breakers import State
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import email_customer, invoice_created
from tests.integration.conftest import import_customers, publish
from tooling.local.ports import free_port


@pytest.fixture
def pipeline_fields(smtp_sandbox: Any) -> dict[str, Any]:
    return {
        "smtp_port": free_port(),  # nothing listens there: the first relay is down
        "smtp_relays": f"{smtp_sandbox.host}:{smtp_sandbox.port}",
        "send_call_attempts": 1,
        "sms_breaker_failures": 2,
        "sms_breaker_cool_down_seconds": 3600,
    }


def _sent(services: Services, count: int) -> list[dict[str, Any]] | None:
    with services.reading() as conn:
        rows = [
            dict(r)
            for r in conn.execute(select(notifications).where(notifications.c.channel == "email")).mappings()
        ]
    done = [r for r in rows if r["status"] == Status.SENT]
    return done if len(done) == count else None


def test_emails_fail_over_to_the_next_relay_each_delivered_once(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    import_customers(
        pipeline,
        *[{**email_customer(f"aino{i}@example.fi"), "customer_id": f"C{i}"} for i in range(1, 6)],
    )
    publish(
        pipeline.settings,
        *[invoice_created(f"evt_{i}", id=f"INV-{i}", customer_id=f"C{i}") for i in range(1, 6)],
    )
    rows = wait_for(lambda: _sent(pipeline, 5), timeout=60, what="five emails sent")
    delivered = [m["To"] for m in smtp_sandbox.messages]
    assert sorted(delivered) == sorted(r["recipient"] for r in rows)  # each once
    assert {r["provider"] for r in rows} == {"smtp-2"}
    assert {m["Message-ID"] for m in smtp_sandbox.messages} == {r["provider_id"] for r in rows}
    with pipeline.reading() as conn:
        attempts = load_attempts(conn, [r["id"] for r in rows])
        (breaker, _) = all_breakers(conn)["smtp"]
    assert breaker.state == State.OPEN
    assert {(a["outcome"], a["provider"]) for a in attempts} <= {("retry", "smtp"), ("accepted", "smtp-2")}
    assert [a["provider"] for a in attempts if a["outcome"] == "accepted"] == ["smtp-2"] * 5
    assert any(a["provider"] == "smtp" for a in attempts)  # tried there before its breaker opened
