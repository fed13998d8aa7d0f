"""What the preference page shows and saves, and each organisation's preference settings.

A contact's page: every address with its notify toggle and four categories, and the SMS choice
of each customer account the contact belongs to. Saving goes through the consent trail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from infra.store.tables import (
    contact_emails,
    contacts,
    customer_contacts,
    customers,
    organisations,
    preference_settings,
)
from schemas.directory import is_directory_id
from schemas.toggles import EMAIL_CATEGORIES

#: A colour the page may put in its style sheet: nothing but ``#rrggbb``.
COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
SCOPES = ("category", "all")
DEFAULTS: dict[str, Any] = {
    "brand_colour": None,
    "required_categories": [],
    "required_reason": None,
    "unsubscribe_scope": "category",
    "sms_help_text": None,
    "sms_link": False,
}


@dataclass(frozen=True)
class PreferenceSettings:
    """How an organisation's page and unsubscribe links behave."""

    org_id: str
    name: str
    brand_colour: str | None = None
    required_categories: frozenset[str] = frozenset()
    required_reason: str | None = None
    unsubscribe_scope: str = "category"  # category: the email's kind only; all: all optional mail
    sms_help_text: str | None = None
    sms_link: bool = False


@dataclass(frozen=True)
class AccountChoice:
    """One customer account of the contact and whether it texts them."""

    customer_id: str
    name: str
    sms: bool
    #: Not the contact's to switch: SMS is off for the whole account, or the organisation switched
    #: the contact's SMS off (their "yes" for the account would not be heard).
    blocked_by_org: bool


@dataclass(frozen=True)
class ContactPreferences:
    """Everything the page shows of one contact."""

    contact_id: str
    name: str
    locale: str
    has_mobile: bool
    sms_opted_out: bool
    emails: dict[str, tuple[bool, dict[str, bool]]] = field(default_factory=dict)
    accounts: tuple[AccountChoice, ...] = ()
    suppressed: frozenset[str] = frozenset()  # addresses suppressed after a hard bounce


def load_preference_settings(conn: Connection, org_id: str) -> PreferenceSettings:
    """The organisation's preference settings (defaults when never set) and its name."""
    name = conn.execute(select(organisations.c.name).where(organisations.c.org_id == org_id)).scalar()
    row = (
        conn.execute(select(preference_settings).where(preference_settings.c.org_id == org_id))
        .mappings()
        .first()
    )
    values = {**DEFAULTS, **(dict(row) if row else {})}
    colour = values["brand_colour"]
    return PreferenceSettings(
        org_id=org_id,
        name=str(name or org_id),
        brand_colour=colour if colour and COLOUR.fullmatch(colour) else None,
        required_categories=frozenset(values["required_categories"] or ()) & frozenset(EMAIL_CATEGORIES),
        required_reason=values["required_reason"],
        unsubscribe_scope=values["unsubscribe_scope"]
        if values["unsubscribe_scope"] in SCOPES
        else "category",
        sms_help_text=values["sms_help_text"],
        sms_link=bool(values["sms_link"]),
    )


def update_preference_settings(conn: Connection, org_id: str, changes: dict[str, Any]) -> PreferenceSettings:
    """Create or change an organisation's preference settings (validated); returns them."""
    unknown = set(changes) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown preference settings: {', '.join(sorted(unknown))}")
    colour = changes.get("brand_colour")
    if colour is not None and not COLOUR.fullmatch(colour):
        raise ValueError(f"brand_colour: {colour!r} is not #rrggbb")
    bad = set(changes.get("required_categories") or ()) - set(EMAIL_CATEGORIES)
    if bad:
        raise ValueError(f"required_categories: no such category: {', '.join(sorted(bad))}")
    if changes.get("unsubscribe_scope", "category") not in SCOPES:
        raise ValueError(f"unsubscribe_scope: one of {', '.join(SCOPES)}")
    for key in ("required_reason", "sms_help_text"):
        text = changes.get(key)
        if text is not None and (len(text) > 300 or not text.isprintable()):
            raise ValueError(f"{key}: at most 300 printable characters")
    if "sms_link" in changes and not isinstance(changes["sms_link"], bool):
        raise ValueError("sms_link: true or false")
    now = datetime.now(UTC)
    exists = conn.execute(
        select(preference_settings.c.org_id).where(preference_settings.c.org_id == org_id)
    ).first()
    if exists is None:
        conn.execute(
            preference_settings.insert().values(org_id=org_id, **{**DEFAULTS, **changes}, updated_at=now)
        )
    else:
        conn.execute(
            update(preference_settings)
            .where(preference_settings.c.org_id == org_id)
            .values(**changes, updated_at=now)
        )
    return load_preference_settings(conn, org_id)


def load_contact_preferences(conn: Connection, org_id: str, contact_id: str) -> ContactPreferences | None:
    """The contact's addresses and accounts, or ``None`` when there is no such contact."""
    if not is_directory_id(contact_id):
        return None
    row = conn.execute(
        select(contacts).where(contacts.c.org_id == org_id, contacts.c.contact_id == contact_id)
    ).first()
    if row is None:
        return None
    email_rows = conn.execute(
        select(contact_emails)
        .where(contact_emails.c.org_id == org_id, contact_emails.c.contact_id == contact_id)
        .order_by(contact_emails.c.address)
    ).all()
    emails = {
        e.address: (bool(e.notify), {c: bool((e.categories or {}).get(c, True)) for c in EMAIL_CATEGORIES})
        for e in email_rows
    }
    links = conn.execute(
        select(
            customer_contacts.c.customer_id,
            customer_contacts.c.is_primary,
            customer_contacts.c.sms_enabled,
            customers.c.name,
            customers.c.sms_enabled.label("customer_sms"),
        )
        .join(
            customers,
            and_(
                customers.c.org_id == customer_contacts.c.org_id,
                customers.c.customer_id == customer_contacts.c.customer_id,
            ),
        )
        .where(customer_contacts.c.org_id == org_id, customer_contacts.c.contact_id == contact_id)
        .order_by(customer_contacts.c.customer_id)
    ).all()
    accounts = tuple(
        AccountChoice(
            customer_id=link.customer_id,
            name=link.name or link.customer_id,
            sms=account_sms(row.sms_enabled, link.is_primary, link.sms_enabled),
            blocked_by_org=not link.customer_sms or row.sms_enabled is False,
        )
        for link in links
    )
    return ContactPreferences(
        contact_id=contact_id,
        name=row.name,
        locale=row.locale,
        has_mobile=bool(row.mobile_raw),
        sms_opted_out=bool(row.sms_opted_out),
        emails=emails,
        accounts=accounts,
        suppressed=frozenset(e.address for e in email_rows if e.suppressed_reason is not None),
    )


def account_sms(contact_sms: bool | None, is_primary: bool, chosen: bool | None) -> bool:
    """Whether an account texts the contact, as the routing rules decide it (``sms_decision``):
    their own "no" for the account always holds; their "yes" stands in for the role's default
    (a contact person is not texted unless switched on) but not over an explicit "off" of the
    contact's toggle."""
    if chosen is False:
        return False
    if contact_sms is not None:
        return contact_sms
    return True if chosen else is_primary
