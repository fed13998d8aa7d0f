"""The message-type registry: every message that travels between stages.

Names are past tense (what happened); bodies are JSON primitives; each type
names the stage queue and actor that consume it. Workers pass ids and re-read
state from the store.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.notifications import Status


class StageMessage(BaseModel):
    """Base of inter-stage messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Past-tense name, unique in the registry.
    name: ClassVar[str]
    #: The stage whose queue receives it, and the actor there.
    stage: ClassVar[str]
    actor: ClassVar[str]

    def body(self) -> dict[str, Any]:
        """The message as JSON primitives."""
        return self.model_dump(mode="json", exclude_none=True)


class EventPublished(StageMessage):
    """An upstream event, as published (the envelope itself travels as the body)."""

    name = "event.published"
    stage = "route"
    actor = "route_event"


NOTIFICATION_ID_PATTERN = r"^ntf_[0-9a-f]+$"
NotificationId = Field(min_length=5, max_length=40, pattern=NOTIFICATION_ID_PATTERN)
_NOTIFICATION_ID = re.compile(r"ntf_[0-9a-f]{1,36}")


def is_notification_id(value: str) -> bool:
    """Whether ``value`` has the shape of a notification id (``NotificationId``), so that a
    message naming it validates. Pure; ``fullmatch``, so a trailing newline does not pass."""
    return _NOTIFICATION_ID.fullmatch(value) is not None


class NotificationDecided(StageMessage):
    """Routing decided to send a notification: render it."""

    name = "notification.decided"
    stage = "render"
    actor = "render_notification"
    notification_id: str = NotificationId


class NotificationRendered(StageMessage):
    """A notification's text is ready: send it."""

    name = "notification.rendered"
    stage = "sms"
    actor = "send_sms"
    notification_id: str = NotificationId


class EmailRendered(StageMessage):
    """An email notification's subject, text and HTML are ready: send it."""

    name = "email.rendered"
    stage = "email"
    actor = "send_email"
    notification_id: str = NotificationId


#: Ids from upstream (organisations, invoices) and GoCardless (``BRQ…``), as the event contract has them.
ExternalId = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")


class CollectionRequested(StageMessage):
    """An invoice asks for Direct Debit: collect it (the stored event names the invoice)."""

    name = "collection.requested"
    stage = "collect"
    actor = "collect_invoice"
    org_id: str = ExternalId
    event_id: str = ExternalId
    invoice_id: str = ExternalId


class MandateSetupRequested(StageMessage):
    """A mandate-setup request (Billing Request + Flow) was made: tell the customer, by email."""

    name = "mandate_setup.requested"
    stage = "route"
    actor = "route_mandate_setup"
    org_id: str = ExternalId
    billing_request_id: str = ExternalId


class DeliveryStatusReported(StageMessage):
    """A sender or a provider callback reported a delivery status."""

    name = "delivery.status_reported"
    stage = "history"
    actor = "record_status"
    notification_id: str = NotificationId
    status: Status
    source: str = Field(min_length=1, max_length=40)
    occurred_at: AwareDatetime
    provider_id: str | None = Field(None, max_length=64)
    error_code: int | None = None
    detail: str | None = Field(None, max_length=500)


REGISTRY: dict[str, type[StageMessage]] = {
    m.name: m
    for m in (
        EventPublished,
        NotificationDecided,
        NotificationRendered,
        EmailRendered,
        DeliveryStatusReported,
        CollectionRequested,
        MandateSetupRequested,
    )
}
