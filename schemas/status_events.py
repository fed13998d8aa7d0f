"""The outward contract: status events herald sends back to the upstream (webhooks and the
``PREFIX.notifications`` exchange), version 1.

Every event is ``{"type", "version", "id", "timestamp", "data"}`` (the Standard Webhooks payload
shape; ``id`` is also the ``webhook-id`` header and the AMQP ``message_id``). ``data`` carries the
upstream's own ids (organisation, invoice, customer, contact, event) so the upstream can place the
event without a lookup, herald's notification id, and a masked recipient: never a full number or
address. New optional fields may be added within a version; removing or renaming one is a new
version, with its own schema file (``schemas/status_event.schema.v1.json``, ``herald schema --status``).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

STATUS_SCHEMA_VERSION = 1


class StatusEventType(StrEnum):
    """Every outward event type (the AMQP routing key, the webhook ``type``)."""

    NOTIFICATION_DECIDED = "notification.decided"
    NOTIFICATION_HELD = "notification.held"
    NOTIFICATION_SENT = "notification.sent"
    NOTIFICATION_DELIVERED = "notification.delivered"
    NOTIFICATION_FAILED = "notification.failed"
    NOTIFICATION_UNDELIVERED = "notification.undelivered"
    PAYMENT_CREATED = "payment.created"
    PAYMENT_STATUS_CHANGED = "payment.status_changed"
    MANDATE_SETUP_LINK_SENT = "mandate.setup_link_sent"
    MANDATE_STATUS_CHANGED = "mandate.status_changed"
    REMINDER_SCHEDULED = "reminder.scheduled"


_Id = Annotated[str, Field(max_length=200)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NotificationData(_Data):
    """A notification: who it was for (masked), on which channel, about which event."""

    org_id: _Id
    invoice_id: _Id
    customer_id: _Id
    contact_id: _Id
    event_id: _Id = Field(description="the upstream event (or herald's own) that caused it")
    notification_id: str = Field(description="herald's id of the notification (ntf_…)")
    kind: str = Field(description="invoice, payment_reminder, payment_thank_you, mandate_setup")
    channel: Literal["sms", "email"]
    recipient: str = Field(description="masked: +358*******67, a***@example.fi; empty when none")
    status: str = Field(description="the notification's status this event reports")
    occurred_at: str = Field(description="when it happened (ISO 8601, UTC)")


class DecidedData(NotificationData):
    """Routing decided to send (``decision: send``) or not (``skip``, with the reason code)."""

    decision: Literal["send", "skip"]
    reason: str = Field(description="the recipient rule's reason code, e.g. sms_disabled_for_contact")


class HeldData(NotificationData):
    """Held back for now (quiet hours, a rate limit): it will be sent at ``until`` at the latest."""

    reason: str
    until: str | None = None


class SentData(NotificationData):
    """The provider accepted it (``provider_id``: Twilio's message SID, the SMTP queue id)."""

    provider_id: str | None = None


class FailedData(NotificationData):
    """Failed for good: ``code`` is the provider's error code (e.g. Twilio 21211), ``reason`` why."""

    code: int | None = None
    reason: str | None = None


class PaymentData(_Data):
    """A Direct Debit payment collecting an invoice."""

    org_id: _Id
    invoice_id: _Id | None
    customer_id: _Id | None
    event_id: _Id | None = Field(None, description="always null: a payment is not caused by one event")
    payment_id: str = Field(description="GoCardless's payment id (PM…)")
    mandate_id: str | None
    amount_minor: int
    currency: str
    status: str
    previous_status: str | None = None
    charge_date: str | None = None
    occurred_at: str


class MandateData(_Data):
    """A Direct Debit mandate of a customer."""

    org_id: _Id
    customer_id: _Id
    invoice_id: _Id | None = None
    contact_id: _Id | None = None
    event_id: _Id | None = None
    notification_id: str | None = None
    recipient: str | None = None
    mandate_id: str | None = None
    status: str
    previous_status: str | None = None
    occurred_at: str


class ReminderData(_Data):
    """A ``reminder.due`` event herald published for an unpaid invoice (route decides who is told)."""

    org_id: _Id
    invoice_id: _Id
    customer_id: _Id
    event_id: _Id = Field(description="the reminder.due event's id, on every notification it causes")
    offset_days: int
    occurred_at: str


def _envelope(name: str, type_: StatusEventType, data: type[BaseModel]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "type": (Literal[type_.value], ...),
        "version": (Literal[1], STATUS_SCHEMA_VERSION),
        "id": (str, Field(..., description="msg_…: the webhook-id, the same on every re-send")),
        "timestamp": (str, Field(..., description="when herald recorded it (ISO 8601, UTC)")),
        "data": (data, ...),
    }
    return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


#: The model of each type's ``data``.
DATA_MODELS: dict[StatusEventType, type[BaseModel]] = {
    StatusEventType.NOTIFICATION_DECIDED: DecidedData,
    StatusEventType.NOTIFICATION_HELD: HeldData,
    StatusEventType.NOTIFICATION_SENT: SentData,
    StatusEventType.NOTIFICATION_DELIVERED: NotificationData,
    StatusEventType.NOTIFICATION_FAILED: FailedData,
    StatusEventType.NOTIFICATION_UNDELIVERED: FailedData,
    StatusEventType.PAYMENT_CREATED: PaymentData,
    StatusEventType.PAYMENT_STATUS_CHANGED: PaymentData,
    StatusEventType.MANDATE_SETUP_LINK_SENT: MandateData,
    StatusEventType.MANDATE_STATUS_CHANGED: MandateData,
    StatusEventType.REMINDER_SCHEDULED: ReminderData,
}

ENVELOPES: dict[StatusEventType, type[BaseModel]] = {
    t: _envelope("".join(p.title() for p in t.value.replace(".", "_").split("_")), t, m)
    for t, m in DATA_MODELS.items()
}

_ANY: Any = Union[tuple(ENVELOPES.values())]  # noqa: UP007 - built from the list of types
_ANY_EVENT: TypeAdapter[Any] = TypeAdapter(Annotated[_ANY, Field(discriminator="type")])


def wants(event_types: Sequence[str] | None, type_: str) -> bool:
    """Whether an endpoint with this filter (``None``: every type) receives events of ``type_``."""
    return event_types is None or type_ in event_types


def validate_status_event(payload: dict[str, Any]) -> BaseModel:
    """Check one outward event against the contract (raises ``pydantic.ValidationError``)."""
    return _ANY_EVENT.validate_python(payload)


def status_event_json_schema() -> dict[str, Any]:
    """The JSON Schema of one outward event (any of the types, by ``type``)."""
    schema = _ANY_EVENT.json_schema()
    schema["title"] = f"herald status event v{STATUS_SCHEMA_VERSION}"
    return schema
