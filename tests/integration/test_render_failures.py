"""The render stage ends what it cannot render for good: ``failed`` with the reason, never retried
(issue 13, defects 2 and 4), through the real broker and store."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.directory import upsert_customer
from infra.store.history import invoice_history
from infra.store.tables import notifications
from infra.store.templates import save_override
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer
from tests.integration.conftest import queue_depths
from tests.integration.stored import routed_notification


def _failed(services: Services, nid: str) -> dict[str, Any] | None:
    with services.transaction() as conn:
        row = conn.execute(select(notifications).where(notifications.c.id == nid)).mappings().first()
    return dict(row) if row is not None and row["status"] == Status.FAILED else None


def _failure_detail(services: Services) -> str:
    with services.transaction() as conn:
        timeline = invoice_history(conn, "INV-1", "acme")["timeline"]
    (failed,) = [e for e in timeline if e["what"] == "failed"]
    return str(failed["detail"])


def _failed_at_render(services: Services, override: str | None = None, **invoice: Any) -> str:
    """Customer C1 stored (with an organisation SMS body ``override`` when given) and a routed SMS
    of ``invoice`` sent to render: once it is recorded failed, with nothing left in the render
    queues to retry, the detail of its failure."""
    from schemas.messages import NotificationDecided

    with services.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer()), region="FI")
        if override is not None:
            save_override(conn, "acme", ("invoice", "sms", "fi", "body"), override)
    nid = routed_notification(services, "sms", "+358401234567", **invoice)
    services.emitter.emit(NotificationDecided(notification_id=nid))

    wait_for(lambda: _failed(services, nid), timeout=30, what="the notification recorded failed")
    detail = _failure_detail(services)
    url = services.settings.amqp_url.get_secret_value()
    wait_for(lambda: queue_depths(url, "render") == (0, 0, 0), timeout=10, what="nothing left to retry")
    return detail


@pytest.mark.parametrize("total", ["1e400", "123456789012345678901234567"])
def test_an_amount_that_cannot_be_rendered_is_failed_with_its_reason_and_never_retried(
    pipeline: Services, twilio_sandbox: Any, total: str
) -> None:
    detail = _failed_at_render(pipeline, total=total)
    assert "total" in detail, detail
    assert twilio_sandbox.messages() == []


def test_a_template_that_builds_too_much_is_failed_naming_the_template_and_line_not_retried(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    # As if saved before the save-time limits: render refuses it on its own.
    detail = _failed_at_render(pipeline, "Lasku\n{{ 'y' * 10000001 }}")
    assert detail.startswith("template: invoice.sms.fi line 2: "), detail
    assert "limit" in detail
    assert twilio_sandbox.messages() == []
