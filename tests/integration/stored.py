"""Events and notifications stored directly rather than through the pipeline: as if routed before
the producer refused such values (issue 13), which the stages must still end cleanly, or an SMS
already claimed for sending, for the status reports that follow."""

from __future__ import annotations

import copy
from typing import Any

from infra.bootstrap import Services
from infra.store.notifications import (
    NewNotification,
    claim_for_sending,
    record_event,
    record_notifications,
    record_provider_id,
)
from schemas.events import event_adapter
from schemas.validation import event_to_json, parse_event
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


def claimed_sms(services: Services, provider_id: str | None = None) -> str:
    """Store an ``invoice.created`` and its one SMS notification, to P1, claimed for sending (and
    given Twilio's ``provider_id`` when there is one); its id."""
    event = parse_event(invoice_created())
    sms = NewNotification("P1", "invoice", "sms", "+358401234567", "fi", "send", True)
    with services.transaction() as conn:
        record_event(conn, event, event_to_json(event), "routed")
        (nid,) = record_notifications(conn, event, [sms])
        claim_for_sending(conn, nid)
        if provider_id is not None:
            record_provider_id(conn, nid, provider_id)
    return nid
