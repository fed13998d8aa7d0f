"""The store's tables (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

organisations = Table(
    "organisations",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("name", String(200)),
    Column("default_locale", String(10)),  # NULL: English
    Column("default_region", String(2)),  # NULL: HERALD_DEFAULT_REGION
    Column("sms_connected", Boolean, nullable=False, default=True),
    Column("sender_number", String(20)),  # NULL: HERALD_TWILIO_FROM
    Column("sender_name", String(11)),
    Column("sender_name_active", Boolean, nullable=False, default=False),
    # "kind:channel" pairs switched off organisation-wide; every template is on otherwise.
    Column("disabled_templates", JSON, nullable=False),
    Column("buys_credit", Boolean, nullable=False, default=False),
    Column("credit_balance", Integer, nullable=False, default=0),
    Column("low_balance_threshold", Integer),  # NULL: no warning
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("customer_id", String(200), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("sms_enabled", Boolean, nullable=False, default=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

contacts = Table(
    "contacts",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("contact_id", String(200), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("mobile_raw", String(40)),
    Column("mobile_e164", String(20)),
    Column("sms_enabled", Boolean),  # NULL: the default for the contact's role
    # Replied STOP (Twilio 21610): no SMS from then on, whatever the toggle says.
    Column("sms_opted_out", Boolean, nullable=False, default=False, server_default=false()),
    Column("locale", String(10), nullable=False, default="en"),
    Column("status", String(20), nullable=False, default="active"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

customer_contacts = Table(
    "customer_contacts",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("customer_id", String(200), primary_key=True),
    Column("contact_id", String(200), primary_key=True),
    Column("is_primary", Boolean, nullable=False, default=False),
    ForeignKeyConstraint(["org_id", "customer_id"], ["customers.org_id", "customers.customer_id"]),
    ForeignKeyConstraint(["org_id", "contact_id"], ["contacts.org_id", "contacts.contact_id"]),
)

contact_emails = Table(
    "contact_emails",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("contact_id", String(200), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("notify", Boolean, nullable=False, default=True),
    Column("categories", JSON, nullable=False),
    ForeignKeyConstraint(["org_id", "contact_id"], ["contacts.org_id", "contacts.contact_id"]),
)

events = Table(
    "events",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("event_id", String(200), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("invoice_id", String(200), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # What routing made of the event as a whole: routed, manual_only, unknown_customer, ...
    Column("outcome", String(40)),
    Column("payload", JSON, nullable=False),
    Index("ix_events_invoice", "org_id", "invoice_id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(200), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("invoice_id", String(200), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("contact_id", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("channel", String(10), nullable=False),
    # E.164 number or email address; '' when the contact has none (skipped).
    Column("recipient", String(320), nullable=False),
    Column("locale", String(10), nullable=False),
    Column("reason", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("sender", String(40)),
    Column("body", Text),  # SMS text, or the plain-text part of an email
    Column("subject", Text),  # email only
    Column("html", Text),  # email only
    Column("provider_id", String(64)),
    Column("error_code", Integer),
    # SMS credit reserved for this message (NULL: none reserved; 0 after a refund).
    Column("segments", Integer),
    Column("attempts", Integer, nullable=False, default=0),
    Column("attempted_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # When the status sweep last asked the provider about it (NULL: never).
    Column("swept_at", DateTime(timezone=True)),
    UniqueConstraint("org_id", "event_id", "contact_id", "channel", "recipient", name="uq_notification"),
    ForeignKeyConstraint(["org_id", "event_id"], ["events.org_id", "events.event_id"]),
    Index("ix_notifications_invoice", "org_id", "invoice_id"),
    Index("ix_notifications_contact", "org_id", "contact_id"),
    Index("ix_notifications_status", "status", "updated_at"),
)

status_changes = Table(
    "status_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("provider_id", String(64)),
    Column("error_code", Integer),
    Column("detail", String(500)),
    Column("source", String(40), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
    UniqueConstraint("notification_id", "status", name="uq_status_change"),
)


#: Every call to a provider for a notification, in order: the retries history shows.
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String(40), nullable=False),
    Column("attempt", Integer, nullable=False),
    # accepted, retry (transient), refused (permanent), ambiguous, reconciled, gave_up
    Column("outcome", String(20), nullable=False),
    Column("http_status", Integer),
    Column("error_code", Integer),
    Column("retry_after_seconds", Float),
    Column("detail", String(500)),
    Column("at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
    Index("ix_delivery_attempts_notification", "notification_id", "id"),
)

#: The shared per-sender rate limit: the earliest time (epoch seconds) the next segment may go.
send_rate = Table(
    "send_rate",
    metadata,
    Column("sender", String(40), primary_key=True),
    Column("next_free_at", Float, nullable=False),
)


templates = Table(
    "templates",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("kind", String(40), primary_key=True),
    Column("channel", String(10), primary_key=True),
    Column("locale", String(10), primary_key=True),
    Column("part", String(10), primary_key=True),  # body (SMS); subject, text, html (email)
    Column("source", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


org_warnings = Table(
    "org_warnings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", String(200), nullable=False),
    Column("kind", String(40), nullable=False),  # low_balance
    Column("detail", String(500), nullable=False),
    Column("notification_id", String(40)),
    Column("invoice_id", String(200)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_org_warnings_org", "org_id", "at"),
)

# Feature tables live in their own modules on the same metadata; importing them here keeps
# ``metadata`` complete for whoever compares it with the migrations.
from infra.store import tables_api, tables_gocardless, tables_scheduler  # noqa: E402, F401
