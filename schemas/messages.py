"""The message-type registry: every message that travels between stages.

Names are past tense (what happened); bodies are JSON primitives; each type
names the stage queue and actor that consume it. Workers pass ids and re-read
state from the store.

The hot path also has batch types (issue 15): one message carries up to ``MAX_BATCH_ITEMS`` items
(events, notification ids or status reports) for the same stage queue, under an actor of its own,
so a stage handles them in one transaction. The single-item types stay: messages already queued
by an older deployment, and producers that send one at a time (the api's callbacks), still need
their actors. ``BatchMessage.chunked`` cuts a list into messages of at most
``HERALD_STAGE_BATCH_SIZE`` items.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Self, TypeVar

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


T = TypeVar("T")

#: The most items one batch message may carry, whatever ``HERALD_STAGE_BATCH_SIZE`` says: a bound
#: of the message type, so a message queued under a larger setting still decodes after it shrinks.
MAX_BATCH_ITEMS = 1000


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` cut into consecutive lists of at most ``size`` each, in order; none for no items.

    Pure. ``size`` is the stage batch size (``HERALD_STAGE_BATCH_SIZE``), 1 to ``MAX_BATCH_ITEMS``.
    """
    if not 1 <= size <= MAX_BATCH_ITEMS:
        raise ValueError(f"a batch holds 1 to {MAX_BATCH_ITEMS} items, not {size}")
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


class BatchMessage(StageMessage):
    """Base of the batch messages: many items of one kind for one stage, handled in one transaction.

    Each item is handled as its single-item message would be; one that fails fails alone.
    """

    #: The field that holds the items (a list of 1 to ``MAX_BATCH_ITEMS``).
    items_field: ClassVar[str]

    def batch_items(self) -> list[Any]:
        """The items, in order."""
        return list(getattr(self, self.items_field))

    @classmethod
    def chunked(cls, items: Sequence[Any], size: int) -> list[Self]:
        """Messages of at most ``size`` items each, carrying ``items`` in order (see ``chunks``)."""
        return [cls.model_validate({cls.items_field: chunk}) for chunk in chunks(items, size)]


#: The items field of a batch message: 1 to ``MAX_BATCH_ITEMS`` items.
BatchItems = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class EventPublished(StageMessage):
    """An upstream event, as published (the envelope itself travels as the body)."""

    name = "event.published"
    stage = "route"
    actor = "route_event"


class EventsPublished(BatchMessage):
    """Upstream events, as published: each envelope exactly as ``EventPublished`` carries it.

    Each envelope is validated on its own at the stage, so a malformed one is dead-lettered alone.
    """

    name = "events.published"
    stage = "route"
    actor = "route_events"
    items_field = "events"
    events: list[dict[str, Any]] = BatchItems


NOTIFICATION_ID_PATTERN = r"^ntf_[0-9a-f]+$"
NotificationId = Field(min_length=5, max_length=40, pattern=NOTIFICATION_ID_PATTERN)
_NOTIFICATION_ID = re.compile(r"ntf_[0-9a-f]{1,36}")
#: A notification id as an item of a list (``NotificationId`` is a field default).
NotificationIdItem = Annotated[str, Field(min_length=5, max_length=40, pattern=NOTIFICATION_ID_PATTERN)]


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


class NotificationsDecided(BatchMessage):
    """Routing decided to send these notifications: render them."""

    name = "notifications.decided"
    stage = "render"
    actor = "render_notifications"
    items_field = "notification_ids"
    notification_ids: list[NotificationIdItem] = BatchItems


class NotificationRendered(StageMessage):
    """A notification's text is ready: send it."""

    name = "notification.rendered"
    stage = "sms"
    actor = "send_sms"
    notification_id: str = NotificationId


class NotificationsRendered(BatchMessage):
    """These SMS notifications' texts are ready: send them."""

    name = "notifications.rendered"
    stage = "sms"
    actor = "send_sms_batch"
    items_field = "notification_ids"
    notification_ids: list[NotificationIdItem] = BatchItems


class EmailRendered(StageMessage):
    """An email notification's subject, text and HTML are ready: send it."""

    name = "email.rendered"
    stage = "email"
    actor = "send_email"
    notification_id: str = NotificationId


class EmailsRendered(BatchMessage):
    """These email notifications' subjects, texts and HTML are ready: send them."""

    name = "emails.rendered"
    stage = "email"
    actor = "send_email_batch"
    items_field = "notification_ids"
    notification_ids: list[NotificationIdItem] = BatchItems


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


class StatusReport(BaseModel):
    """One delivery status report: the fields of ``DeliveryStatusReported``, an item of
    ``DeliveryStatusesReported``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notification_id: str = NotificationId
    status: Status
    source: str = Field(min_length=1, max_length=40)
    occurred_at: AwareDatetime
    provider_id: str | None = Field(None, max_length=64)
    error_code: int | None = None
    detail: str | None = Field(None, max_length=500)


class DeliveryStatusReported(StageMessage, StatusReport):
    """A sender or a provider callback reported a delivery status."""

    name = "delivery.status_reported"
    stage = "history"
    actor = "record_status"

    def report(self) -> StatusReport:
        """The report alone, as an item of ``DeliveryStatusesReported``."""
        return StatusReport.model_validate(self.model_dump())


class DeliveryStatusesReported(BatchMessage):
    """Senders reported delivery statuses: each report as ``DeliveryStatusReported`` carries it."""

    name = "delivery.statuses_reported"
    stage = "history"
    actor = "record_statuses"
    items_field = "reports"
    reports: list[StatusReport] = BatchItems


REGISTRY: dict[str, type[StageMessage]] = {
    m.name: m
    for m in (
        EventPublished,
        EventsPublished,
        NotificationDecided,
        NotificationsDecided,
        NotificationRendered,
        NotificationsRendered,
        EmailRendered,
        EmailsRendered,
        DeliveryStatusReported,
        DeliveryStatusesReported,
        CollectionRequested,
        MandateSetupRequested,
    )
}
