"""The public event contract: the envelope and the three events.

Amounts are decimal strings (never negative, but for a balance), dates ISO 8601,
flags JSON booleans, invoice URLs http or https; the contract's strings are one
line of visible text.
Fields may be added to ``data`` (unknown ones are kept), never renamed.
``event_id`` is the upstream's idempotency key.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

SCHEMA_VERSION = "1"

# -- characters -------------------------------------------------------------------------------
# Every string of the contract is one line, and several reach email headers and SMS bodies, so
# none may hold: C0 and C1 control characters (tab, CR, LF and NUL included), line and paragraph
# separators, bidirectional controls, or zero-width and other invisible format characters (they
# make a string read as something it is not). Lone surrogates are refused everywhere in an event
# (schemas.validation): JSON can spell them, but they are not Unicode text, and nothing encodes
# them as UTF-8 (an API answer showing one would fail). Fields added upstream keep whatever other
# characters they carry.
_CONTROL = ((0x00, 0x1F), (0x7F, 0x9F))
_SEPARATORS = ((0x2028, 0x2029),)
_BIDI = ((0x061C, 0x061C), (0x200E, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069))
_INVISIBLE = ((0x200B, 0x200D), (0x2060, 0x2064), (0xFEFF, 0xFEFF))
_SURROGATES = ((0xD800, 0xDFFF),)
_KINDS = (
    (_CONTROL, "a control character"),
    (_SEPARATORS, "a line or paragraph separator"),
    (_BIDI, "a bidirectional control character"),
    (_INVISIBLE, "an invisible (zero-width) format character"),
    (_SURROGATES, "a lone surrogate"),
)


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    # \uXXXX escapes: the same text is a Python and an ECMA-262 (JSON Schema) character class.
    return "".join(f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges)


_REFUSED_RANGES = _CONTROL + _SEPARATORS + _BIDI + _INVISIBLE
#: The characters no contract string may hold, as a regular-expression class body.
REFUSED_CHARACTERS = _char_class(_REFUSED_RANGES)
# Lone surrogates are left out of the published pattern: without the ``u`` flag an ECMA-262 regex
# sees UTF-16 halves, and would refuse every emoji.
_REFUSED = re.compile(f"[{REFUSED_CHARACTERS}{_char_class(_SURROGATES)}]")
_SURROGATE = re.compile(f"[{_char_class(_SURROGATES)}]")
#: A one-line text field of the contract (the JSON Schema's pattern).
TEXT_PATTERN = f"^[^{REFUSED_CHARACTERS}]*$"


def describe_character(char: str) -> str:
    """``a control character U+000D``: what a refused character is, and its code point."""
    code = ord(char)
    for ranges, kind in _KINDS:
        if any(low <= code <= high for low, high in ranges):
            suffix = " (not valid Unicode text)" if ranges is _SURROGATES else ""
            return f"{kind} U+{code:04X}{suffix}"
    return f"the character U+{code:04X}"


def first_lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` (JSON can spell one, ``"\\ud800"``), or None."""
    found = _SURROGATE.search(text)
    return found.group() if found else None


# The patterns are checked by pydantic-core (Rust, and fast: every event published passes here);
# schemas.validation turns a mismatch into ``explain_mismatch``'s words.
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
#: An invoice number: one line of visible text.
Number = Annotated[
    str, Field(min_length=1, max_length=100, pattern=TEXT_PATTERN, description="one line of visible text")
]

# -- URLs -------------------------------------------------------------------------------------
# An invoice URL becomes a link in emails: http and https only (no javascript:, data:, …), with a
# host, and none of the refused characters. The scheme is case-insensitive (RFC 3986).
URL_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#{REFUSED_CHARACTERS}][^{REFUSED_CHARACTERS}]*$"
HttpUrl = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=URL_PATTERN, description="an http or https URL")
]


def explain_mismatch(value: object, pattern: str) -> str | None:
    """What a contract string that failed its pattern got wrong, said plainly: the refused
    character it holds (``contains a control character U+000D``), or the URL rule; None when
    pydantic's own message says it (``String should match pattern '^[A-Z]{3}$'``)."""
    if isinstance(value, str):
        found = _REFUSED.search(value)
        if found is not None:
            return f"contains {describe_character(found.group())}"
    if pattern == URL_PATTERN:
        return (
            'must be an http or https URL with a host, such as "https://billing.example/i/1"; '
            "other schemes (javascript:, data:, ftp:, …) are refused"
        )
    return None


# -- amounts ----------------------------------------------------------------------------------
# Decimal strings, so no float rounding sneaks in; plain digits only (no exponent, plus sign,
# spaces or non-ASCII digits), at most 15 before the point and 4 after: 19 significant digits fit
# a DECIMAL(19,4) column and Decimal's 28-digit context exactly, 15 integer digits exceed any
# invoice, and no ISO 4217 currency has more than 4 minor-unit digits.
# An invoice's total and a payment's amount are never negative (a credit note is not an invoice,
# a refund not a payment received); an invoice's balance may be (paid more than its total: the
# customer has credit), and herald then treats it as paid, with nothing to collect or remind of.
AMOUNT_INTEGER_DIGITS = 15
AMOUNT_FRACTION_DIGITS = 4
_DIGITS = rf"[0-9]{{1,{AMOUNT_INTEGER_DIGITS}}}(\.[0-9]{{1,{AMOUNT_FRACTION_DIGITS}}})?$"
#: The published pattern of a total or a payment amount, and of a balance (which may be negative).
AMOUNT_PATTERN = f"^{_DIGITS}"
SIGNED_AMOUNT_PATTERN = f"^-?{_DIGITS}"
_AMOUNT_SHAPE = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:40]) + "…"


_VALID_AMOUNT = re.compile(AMOUNT_PATTERN)
_VALID_SIGNED_AMOUNT = re.compile(SIGNED_AMOUNT_PATTERN)


def _amount(value: object, *, signed: bool) -> Decimal:
    if isinstance(value, str) and (_VALID_SIGNED_AMOUNT if signed else _VALID_AMOUNT).fullmatch(value):
        return Decimal(value)  # the common case first, in one match (fullmatch: "$" alone lets "12\n" by)
    if isinstance(value, Decimal):
        text = format(value, "f")  # a Python caller's Decimal: its digits, never an exponent
    elif isinstance(value, str):
        text = value
    else:
        # A JSON number would be parsed as a float first and could lose cents.
        raise ValueError('must be a decimal string such as "123.40"')
    if _AMOUNT_SHAPE.fullmatch(text) is None:
        raise PydanticCustomError(
            "amount_format",
            'must be a decimal string such as "123.40" (digits, then optionally a point and '
            "decimals; no exponent, plus sign or spaces), got {got}",
            {"got": _shown(text)},
        )
    if text.startswith("-") and not signed:
        raise PydanticCustomError(
            "amount_negative",
            "must not be negative (a credit note is not an invoice, nor a refund a payment)",
        )
    integer, _, fraction = text.lstrip("-").partition(".")
    if len(integer) > AMOUNT_INTEGER_DIGITS:
        raise PydanticCustomError(
            "amount_too_large",
            "must be a decimal string of at most {digits} digits before the point, got {got}",
            {"digits": AMOUNT_INTEGER_DIGITS, "got": len(integer)},
        )
    if len(fraction) > AMOUNT_FRACTION_DIGITS:
        raise PydanticCustomError(
            "amount_too_precise",
            "must be a decimal string of at most {digits} decimals, got {got}",
            {"digits": AMOUNT_FRACTION_DIGITS, "got": len(fraction)},
        )
    return Decimal(text)


def _amount_schema(pattern: str, what: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "type": "string",
            "pattern": pattern,
            "description": f"a {what}decimal string: at most {AMOUNT_INTEGER_DIGITS} digits "
            f"before the point and {AMOUNT_FRACTION_DIGITS} after",
            "examples": ["1234.50"],
        }
    )


_AS_STRING = PlainSerializer(lambda v: str(v), return_type=str, when_used="json")

# Decimal strings on the wire, both ways; the schema states exactly what the validator accepts.
Amount = Annotated[
    Decimal,
    PlainValidator(lambda v: _amount(v, signed=False)),
    _amount_schema(AMOUNT_PATTERN, "non-negative "),
    _AS_STRING,
]
SignedAmount = Annotated[
    Decimal,
    PlainValidator(lambda v: _amount(v, signed=True)),
    _amount_schema(SIGNED_AMOUNT_PATTERN, ""),
    _AS_STRING,
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, strict=False)


class Invoice(_Model):
    """An invoice as upstream billing systems describe it."""

    id: Id
    number: Number
    customer_id: Id
    currency: Currency
    total: Amount
    balance: SignedAmount
    due_date: date
    url: HttpUrl
    send: StrictBool
    recurring: StrictBool
    collection: Literal["direct_debit"] | None
    mandate_id: Id | None = None


class Reminder(_Model):
    """Which reminder this is: days from the due date (negative: before it)."""

    offset_days: int = Field(ge=-365, le=365)
    #: What is still owed after partial payments, when less than the invoice's balance (added).
    outstanding: Amount | None = None


class Payment(_Model):
    """A payment against an invoice."""

    id: Id
    invoice_id: Id
    customer_id: Id
    amount: Amount
    currency: Currency
    method: Literal["online", "manual"]
    notify: StrictBool


class FailedPayment(_Model):
    """A Direct Debit payment that failed for good (no retry)."""

    id: Id
    invoice_id: Id
    customer_id: Id
    amount: Amount
    currency: Currency
    reason: str | None = Field(None, max_length=200)


class InvoiceCreatedData(_Model):
    invoice: Invoice


class ReminderDueData(_Model):
    invoice: Invoice
    reminder: Reminder


class PaymentReceivedData(_Model):
    payment: Payment


class PaymentFailedData(_Model):
    payment: FailedPayment


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    org_id: Id
    occurred_at: AwareDatetime


class _InvoiceEnvelope(_Envelope):
    """An event whose ``data`` carries the invoice itself."""

    if TYPE_CHECKING:  # each event declares its own ``data`` (the field's place in the schema)
        data: InvoiceCreatedData | ReminderDueData

    @property
    def invoice_id(self) -> str:
        return self.data.invoice.id

    @property
    def customer_id(self) -> str:
        return self.data.invoice.customer_id


class InvoiceCreated(_InvoiceEnvelope):
    """``invoice.created``: an invoice was created (and perhaps is to be sent)."""

    type: Literal["invoice.created"]
    data: InvoiceCreatedData


class ReminderDue(_InvoiceEnvelope):
    """``reminder.due``: a payment reminder is due for an unpaid invoice."""

    type: Literal["reminder.due"]
    data: ReminderDueData


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


class PaymentFailed(_Envelope):
    """``payment.failed``: a Direct Debit payment against an invoice failed, and will not be
    retried; the customer is told, and the invoice's reminders go on."""

    type: Literal["payment.failed"]
    data: PaymentFailedData

    @property
    def invoice_id(self) -> str:
        return self.data.payment.invoice_id

    @property
    def customer_id(self) -> str:
        return self.data.payment.customer_id


Event = Annotated[InvoiceCreated | ReminderDue | PaymentReceived | PaymentFailed, Field(discriminator="type")]
EVENT_TYPES: tuple[str, ...] = ("invoice.created", "reminder.due", "payment.received", "payment.failed")

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
