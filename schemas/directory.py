"""The contact directory as upstream systems send it to ``herald contacts import``.

One customer per JSON line, with its contacts and their email addresses.
Phone numbers arrive as people type them; ``infra`` stores them in E.164.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import Id

Locale = str


class EmailCategories(BaseModel):
    """Per-category email toggles; every category is on unless switched off."""

    model_config = ConfigDict(extra="forbid")

    new_invoice: bool = True
    pending_reminders: bool = True
    payment_confirmation: bool = True
    refunds: bool = True


class EmailAddress(BaseModel):
    """One email address of a contact, with its own toggles."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    notify: bool = True
    categories: EmailCategories = Field(default_factory=EmailCategories)


class Contact(BaseModel):
    """A person at a customer: the primary contact or a contact person."""

    model_config = ConfigDict(extra="forbid")

    contact_id: Id
    primary: bool = False
    name: str = Field("", max_length=200)
    mobile: str | None = Field(None, max_length=40)
    # None means the default: on for the primary contact, off for contact persons.
    sms_enabled: bool | None = None
    locale: Locale = Field("en", min_length=2, max_length=10, pattern=r"^[a-z]{2}([-_][A-Za-z]{2,4})?$")
    status: Literal["active", "pending_activation"] = "active"
    emails: list[EmailAddress] = Field(default_factory=list)

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

    org_id: Id
    customer_id: Id
    name: str = Field("", max_length=200)
    sms_enabled: bool = True
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

    def template_enabled(self, kind: str, channel: str) -> bool:
        """Every (kind, channel) template is on unless switched off organisation-wide."""
        return f"{kind}:{channel}" not in self.disabled_templates
