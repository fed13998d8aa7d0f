"""Events and notifications stored directly, as if routed before the producer refused such values
(issue 13): the stages must still end them cleanly."""

from __future__ import annotations

import copy
from typing import Any

from infra.bootstrap import Services
from infra.store.notifications import NewNotification, record_event, record_notifications
from schemas.events import event_adapter
from tests.factories import invoice_created


def routed_notification(
    services: Services, channel: str, recipient: str, *, event_id: str = "evt_stored", **invoice: Any
) -> str:
    """Store an ``invoice.created`` whose payload holds ``invoice`` (unchecked) and its one pending
    notification to contact P1 on ``channel``; its id. The caller emits the stage message."""
    payload = invoice_created(event_id)
    event = event_adapter.validate_python(copy.deepcopy(payload))  # the keys, from valid values
    payload["data"]["invoice"].update(invoice)
    item = NewNotification("P1", "invoice", channel, recipient, "fi", "send", True)
    with services.transaction() as conn:
        record_event(conn, event, payload, "routed")
        (nid,) = record_notifications(conn, event, [item])
    return nid
