"""The contact directory as upstream systems send it to ``herald contacts import``.

One customer per JSON line, with its contacts and their email addresses.
Phone numbers arrive as people type them; ``infra`` stores them in E.164.

Careless and hostile text is refused here, naming the character and where it is: ids,
numbers and addresses hold no control, zero-width or bidi formatting character; names hold
no control character, line break or bidi override (they may hold the joiners and marks that
real scripts need). Booleans are JSON booleans only. A blank or missing name is no name: an
upsert keeps the stored one.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.events import Id
from schemas.providers import SmsProvider

Locale = str

#: Names of the control characters people meet (``unicodedata`` names none of them).
_CONTROL_NAMES = {0x00: "NUL", 0x09: "TAB", 0x0A: "LINE FEED", 0x0D: "CARRIAGE RETURN", 0x1B: "ESCAPE"}
#: Embeddings, overrides and isolates: they reorder what a reader sees (a "Trojan Source" name).
_BIDI_CONTROLS = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
#: Never in a name: controls (C0, DEL, C1), line and paragraph separators, surrogates.
_NEVER_IN_NAMES = frozenset({"Cc", "Zl", "Zp", "Cs"})
#: Never in an id, a number or an address: those, and every format character (zero-width
#: spaces and joiners, marks, the byte-order mark, soft hyphens, tags).
_NEVER_IN_PLAIN = _NEVER_IN_NAMES | {"Cf"}


def _describe(char: str) -> str:
    code = ord(char)
    if code in _CONTROL_NAMES:
        name = _CONTROL_NAMES[code]
    elif unicodedata.category(char) == "Cs":
        name = "SURROGATE"
    else:
        name = unicodedata.name(char, "CONTROL CHARACTER")
    return f"U+{code:04X} {name}"


def forbidden_character(text: str, *, in_name: bool) -> tuple[int, str] | None:
    """The first character ``text`` may not hold, as (1-based position, ``U+202E RIGHT-TO-LEFT
    OVERRIDE``), or ``None``. ``in_name`` allows the format characters scripts need (ZWJ, ZWNJ,
    LRM, RLM) but still refuses bidi overrides, controls and line breaks."""
    never = _NEVER_IN_NAMES if in_name else _NEVER_IN_PLAIN
    for position, char in enumerate(text, start=1):
        if unicodedata.category(char) in never or ord(char) in _BIDI_CONTROLS:
            return position, _describe(char)
    return None


def _checked(in_name: bool) -> Any:
    """A validator run before the field's own checks, so the message names the character."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and (found := forbidden_character(value, in_name=in_name)):
            position, char = found
            raise PydanticCustomError(
                "forbidden_character",
                "contains {char} at character {position}",
                {"char": char, "position": position},
            )
        return value

    return BeforeValidator(check)


def _iana_zone(value: str | None) -> str | None:
    if value is not None and value not in available_timezones():
        raise PydanticCustomError("time_zone", "not an IANA time zone (e.g. Europe/Helsinki)")
    return value


def _blank_is_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


#: An upstream id (customer, contact, organisation).
DirectoryId = Annotated[Id, _checked(in_name=False)]
_directory_id: TypeAdapter[str] = TypeAdapter(DirectoryId)


def is_directory_id(value: object) -> bool:
    """Whether ``value`` could be a stored customer or contact id. A lookup of anything else
    finds nothing, and need not be asked of the database (PostgreSQL refuses NUL in text)."""
    try:
        _directory_id.validate_python(value)
    except ValidationError:
        return False
    return True


#: A person's or company's name; blank is the same as absent (the stored name is kept).
Name = Annotated[str | None, Field(max_length=200), BeforeValidator(_blank_is_none), _checked(in_name=True)]


class EmailCategories(BaseModel):
    """Per-category email toggles; every category is on unless switched off."""

    model_config = ConfigDict(extra="forbid")

    new_invoice: StrictBool = True
    pending_reminders: StrictBool = True
    payment_confirmation: StrictBool = True
    refunds: StrictBool = True


class EmailAddress(BaseModel):
    """One email address of a contact, with its own toggles."""

    model_config = ConfigDict(extra="forbid")

    address: Annotated[
        str,
        Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
        _checked(in_name=False),
    ]
    notify: StrictBool = True
    categories: EmailCategories = Field(default_factory=EmailCategories)


class Contact(BaseModel):
    """A person at a customer: the primary contact or a contact person."""

    model_config = ConfigDict(extra="forbid")

    contact_id: DirectoryId
    primary: StrictBool = False
    name: Name = None
    mobile: Annotated[str | None, Field(max_length=40), _checked(in_name=False)] = None
    # None means the default: on for the primary contact, off for contact persons.
    sms_enabled: StrictBool | None = None
    locale: Locale = Field("en", min_length=2, max_length=10, pattern=r"^[a-z]{2}([-_][A-Za-z]{2,4})?$")
    status: Literal["active", "pending_activation"] = "active"
    emails: list[EmailAddress] = Field(default_factory=list)
    # None: the zone its mobile's prefix names when it names one, else the organisation's.
    timezone: Annotated[
        str | None, Field(max_length=64), _checked(in_name=False), AfterValidator(_iana_zone)
    ] = None

    @model_validator(mode="after")
    def _distinct_addresses(self) -> Contact:
        addresses = [e.address.lower() for e in self.emails]
        repeated = sorted({a for a in addresses if addresses.count(a) > 1})
        if repeated:
            raise ValueError(f"email address repeated: {', '.join(repeated)}")
        return self


class CustomerRecord(BaseModel):
    """One line of a directory import: a customer and its contacts."""

    model_config = ConfigDict(extra="forbid")

    org_id: DirectoryId
    customer_id: DirectoryId
    name: Name = None
    sms_enabled: StrictBool = True
    contacts: list[Contact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_primary(self) -> CustomerRecord:
        primaries = [c.contact_id for c in self.contacts if c.primary]
        if len(primaries) > 1:
            raise ValueError(f"more than one primary contact: {', '.join(primaries)}")
        ids = [c.contact_id for c in self.contacts]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"contact_id repeated: {', '.join(dupes)}")
        return self


@dataclass(frozen=True)
class EmailView:
    """One address of a contact, with its toggles."""

    address: str
    notify: bool = True
    categories: tuple[tuple[str, bool], ...] = ()
    #: Hard-bounced: no email to it until an operator lifts the suppression.
    suppressed: bool = False

    def category_on(self, category: str) -> bool:
        """A category is on unless switched off."""
        return dict(self.categories).get(category, True)


@dataclass(frozen=True)
class ContactView:
    """A contact as the routing rules see it, for one customer."""

    contact_id: str
    is_primary: bool
    name: str
    mobile_raw: str | None
    mobile_e164: str | None
    sms_enabled: bool | None
    locale: str
    status: str
    sms_opted_out: bool = False
    emails: tuple[EmailView, ...] = ()
    #: The contact's own SMS choice for this customer account (preference page); None: not made.
    account_sms: bool | None = None


@dataclass(frozen=True)
class CustomerView:
    """A customer and its contacts, as the routing rules see them."""

    org_id: str
    customer_id: str
    name: str
    sms_enabled: bool
    contacts: tuple[ContactView, ...]


@dataclass(frozen=True)
class OrgView:
    """An organisation's settings as the rules see them (defaults when never configured)."""

    org_id: str
    region: str
    sms_connected: bool = True
    sender_number: str | None = None
    sender_name: str | None = None
    sender_name_active: bool = False
    disabled_templates: frozenset[str] = frozenset()
    buys_credit: bool = False
    credit_balance: int = 0
    #: Its SMS providers in order (empty: Twilio alone, the deployment's sender and rate).
    sms_providers: tuple[SmsProvider, ...] = ()

    def template_enabled(self, kind: str, channel: str) -> bool:
        """Every (kind, channel) template is on unless switched off organisation-wide."""
        return f"{kind}:{channel}" not in self.disabled_templates


@dataclass(frozen=True)
class PayerDetails:
    """What we know of the payer, prefilled on the mandate-setup page."""

    email: str | None = None
    company_name: str | None = None
