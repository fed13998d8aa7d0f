"""The public event contract: the envelope and the three events.

Amounts are decimal strings, dates ISO 8601. Fields may be added to ``data``
(unknown ones are kept), never renamed. ``event_id`` is the upstream's
idempotency key.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
)

SCHEMA_VERSION = "1"

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]


def _decimal_string(value: object) -> object:
    # A JSON number would be parsed as a float first and could lose cents.
    if not isinstance(value, str | Decimal):
        raise ValueError('must be a decimal string such as "123.40"')
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite decimal")
    return value


# Decimal strings on the wire, both ways; floats are refused so no rounding sneaks in.
Amount = Annotated[
    Decimal,
    Field(json_schema_extra={"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}),
    BeforeValidator(_decimal_string),
    AfterValidator(_finite),
    PlainSerializer(lambda v: str(v), return_type=str, when_used="json"),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=False)


class Invoice(_Model):
    """An invoice as upstream billing systems describe it."""

    id: Id
    number: str = Field(min_length=1, max_length=100)
    customer_id: Id
    currency: Currency
    total: Amount
    balance: Amount
    due_date: date
    url: str = Field(min_length=1, max_length=2000)
    send: bool
    recurring: bool
    collection: Literal["direct_debit"] | None
    mandate_id: Id | None = None


class Reminder(_Model):
    """Which reminder this is: days from the due date (negative: before it)."""

    offset_days: int = Field(ge=-365, le=365)


class Payment(_Model):
    """A payment against an invoice."""

    id: Id
    invoice_id: Id
    customer_id: Id
    amount: Amount
    currency: Currency
    method: Literal["online", "manual"]
    notify: bool


class InvoiceCreatedData(_Model):
    invoice: Invoice


class ReminderDueData(_Model):
    invoice: Invoice
    reminder: Reminder


class PaymentReceivedData(_Model):
    payment: Payment


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    org_id: Id
    occurred_at: AwareDatetime


class InvoiceCreated(_Envelope):
    """``invoice.created``: an invoice was created (and perhaps is to be sent)."""

    type: Literal["invoice.created"]
    data: InvoiceCreatedData

    @property
    def invoice_id(self) -> str:
        return self.data.invoice.id

    @property
    def customer_id(self) -> str:
        return self.data.invoice.customer_id


class ReminderDue(_Envelope):
    """``reminder.due``: a payment reminder is due for an unpaid invoice."""

    type: Literal["reminder.due"]
    data: ReminderDueData

    @property
    def invoice_id(self) -> str:
        return self.data.invoice.id

    @property
    def customer_id(self) -> str:
        return self.data.invoice.customer_id


class PaymentReceived(_Envelope):
    """``payment.received``: money arrived against an invoice."""

    type: Literal["payment.received"]
    data: PaymentReceivedData

    @property
    def invoice_id(self) -> str:
        return self.data.payment.invoice_id

    @property
    def customer_id(self) -> str:
        return self.data.payment.customer_id


Event = Annotated[InvoiceCreated | ReminderDue | PaymentReceived, Field(discriminator="type")]
EVENT_TYPES: tuple[str, ...] = ("invoice.created", "reminder.due", "payment.received")

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event, for non-Python publishers."""
    schema = event_adapter.json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://herald.dev/schemas/event/v{SCHEMA_VERSION}.json"
    schema["title"] = "herald event"
    schema["x-herald-schema-version"] = SCHEMA_VERSION
    return schema


def occurred(event: Event) -> datetime:
    """When the event happened, as sent."""
    return event.occurred_at
