"""The store's tables (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
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
    # Local time (docs/reminders.md): IANA zone (NULL: HERALD_DEFAULT_TIMEZONE), local reminder hour
    # (NULL: HERALD_REMINDER_HOUR), the holiday calendar, and send windows by "channel" or
    # "kind:channel" (NULL: SMS 08:00-21:00, email any time).
    Column("timezone", String(64)),
    Column("reminder_hour", Integer),
    Column("country", String(2)),
    Column("subdivision", String(10)),
    Column("business_days", Boolean, nullable=False, default=False, server_default=false()),
    Column("send_windows", JSON),
    Column("collection_grace_days", Integer),  # NULL: 3 days after a retry's charge date
    # Its SMS providers in order, each {"name", "sender", "rate"} (NULL: Twilio alone): docs/failover.md.
    Column("sms_providers", JSON),
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
    Column("timezone", String(64)),  # NULL: its number's single zone, else the organisation's
)

customer_contacts = Table(
    "customer_contacts",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("customer_id", String(200), primary_key=True),
    Column("contact_id", String(200), primary_key=True),
    Column("is_primary", Boolean, nullable=False, default=False),
    # The contact's own SMS choice for this account (preference page); NULL: their contact toggle.
    Column("sms_enabled", Boolean),
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
    # Hard-bounced (SMTP 5xx on the recipient): no email to it until an operator lifts it.
    Column("suppressed_reason", String(500)),
    Column("suppressed_at", DateTime(timezone=True)),
    ForeignKeyConstraint(["org_id", "contact_id"], ["contacts.org_id", "contacts.contact_id"]),
)

#: Every change of a contact's toggles, from any source; append-only (``infra.store.consent``).
consent_changes = Table(
    "consent_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("org_id", String(200), nullable=False),
    Column("contact_id", String(200), nullable=False),
    # "sms", "sms_opted_out", "customer <id> sms", "<address> notify|<category>|suppressed"
    Column("toggle", String(400), nullable=False),
    Column("old", Boolean),
    Column("new", Boolean),
    # preference_page, one_click, sms_keyword, twilio_21610, operator, import, bulk, bounce
    Column("source", String(20), nullable=False),
    Column("actor", String(200), nullable=False),  # API key id, link key:token id, "cli", ...
    Column("detail", String(500)),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_consent_changes_contact", "org_id", "contact_id", "id"),
)

#: The short preference links SMS carry (``/p/<code>``): each stands for a signed token.
short_links = Table(
    "short_links",
    metadata,
    Column("code", String(16), primary_key=True),
    Column("org_id", String(200), nullable=False),
    Column("token", String(2000), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

#: How an organisation's preference page and unsubscribe links behave (defaults when no row).
preference_settings = Table(
    "preference_settings",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("brand_colour", String(7)),  # "#rrggbb"; NULL: herald's
    Column("required_categories", JSON, nullable=False),  # categories a contact cannot switch off
    Column("required_reason", String(300)),
    Column("unsubscribe_scope", String(10), nullable=False),  # category | all
    Column("sms_help_text", String(300)),
    Column("sms_link", Boolean, nullable=False),  # SMS carry a short preference link
    Column("updated_at", DateTime(timezone=True), nullable=False),
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
    # The SMS provider of its latest attempt (NULL: twilio; written only when another one is used).
    Column("provider", String(20)),
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
    Column("provider", String(20)),  # which provider was called (NULL: before failover existed)
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

#: A circuit breaker per provider (workers/rules/breaker.py), shared by every process on every host.
#: Times are epoch seconds.
provider_breakers = Table(
    "provider_breakers",
    metadata,
    Column("provider", String(40), primary_key=True),
    Column("state", String(12), nullable=False),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float),
    Column("opened_at", Float),
    Column("trials", Integer, nullable=False),
    Column("trial_at", Float),
    Column("changed_at", Float, nullable=False),  # when it last changed state
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


# --- The HTTP API: API keys, stored only as hashes -------------------------------------------------
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),  # public handle for list and revoke
    Column("org_id", String(200), nullable=False),
    Column("level", String(10), nullable=False),  # view, send, edit, admin
    Column("name", String(200), nullable=False, default=""),
    # SHA-256 (hex) of the whole key; the key itself is shown once and never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_api_keys_org", "org_id"),
)


# --- Provider integrations (Twilio, GoCardless) and GoCardless's customers, mandates, payments ------
#: One row per provider: connected or disconnected (a deleted integration has no row).
integrations = Table(
    "integrations",
    metadata,
    Column("provider", String(20), primary_key=True),  # gocardless, twilio
    Column("status", String(20), nullable=False),  # connected, disconnected
    Column("account", String(200)),  # what the provider said we are (creditor, account SID)
    Column("connected_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: A GoCardless customer; (org_id, customer_id) is its link to our directory, when known.
gc_customers = Table(
    "gc_customers",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("org_id", String(200)),
    Column("customer_id", String(200)),
    Column("email", String(320)),
    Column("name", String(200)),
    Column("created_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    Index("ix_gc_customers_link", "org_id", "customer_id"),
)

gc_mandates = Table(
    "gc_mandates",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("gc_customer_id", String(40)),
    Column("status", String(40), nullable=False),
    Column("scheme", String(40)),
    Column("reference", String(100)),
    Column("created_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    Index("ix_gc_mandates_customer", "gc_customer_id"),
)

#: A payment at GoCardless; (org_id, invoice_id) says which invoice it collects.
gc_payments = Table(
    "gc_payments",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("org_id", String(200)),
    Column("invoice_id", String(200)),
    Column("customer_id", String(200)),
    Column("gc_mandate_id", String(40)),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(40), nullable=False),
    Column("charge_date", String(10)),
    Column("created_at", DateTime(timezone=True)),
    Column("synced_at", DateTime(timezone=True), nullable=False),
    # From the last payments.failed webhook: GoCardless will retry it (Success+); NULL: not said.
    Column("will_attempt_retry", Boolean),
    Index("ix_gc_payments_invoice", "org_id", "invoice_id"),
)

#: A mandate-setup request (Billing Request + Flow) for a customer without a mandate.
gc_billing_requests = Table(
    "gc_billing_requests",
    metadata,
    Column("gc_id", String(40), primary_key=True),
    Column("org_id", String(200), nullable=False),
    Column("customer_id", String(200), nullable=False),
    Column("invoice_id", String(200)),
    Column("flow_id", String(40)),
    Column("authorisation_url", String(2000)),
    Column("status", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_gc_billing_requests_customer", "org_id", "customer_id"),
)

#: Webhook events already handled, so each is handled once whatever GoCardless resends.
gc_webhook_events = Table(
    "gc_webhook_events",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("resource_type", String(40), nullable=False),
    Column("action", String(60), nullable=False),
    Column("resource_id", String(40)),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

#: One row per sync of one data type (kept 7 days): full import or a webhook batch.
sync_history = Table(
    "sync_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("provider", String(20), nullable=False),
    Column("direction", String(10), nullable=False),  # inbound (theirs to ours), outbound
    Column("data_type", String(40), nullable=False),  # customers, mandates, payments
    Column("trigger", String(20), nullable=False),  # full, webhook
    Column("added", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("detail", String(2000)),
    Index("ix_sync_history_at", "at"),
)


# --- The reminder scheduler: open invoices, each organisation's offsets, reminders claimed ----------
#: Invoices as route last saw them (``invoice.created``), and when recorded payments covered them.
invoices = Table(
    "invoices",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("invoice_id", String(200), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    # Decimal strings, as on the wire (SQLite has no exact decimal type).
    Column("total", String(40), nullable=False),
    Column("balance", String(40), nullable=False),
    Column("due_date", Date, nullable=False),
    # The invoice as the event carried it: a reminder.due repeats it word for word.
    Column("invoice", JSON, nullable=False),
    Column("paid_at", DateTime(timezone=True)),  # NULL: still open
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_invoices_open", "org_id", "paid_at", "due_date"),
)

#: When an organisation reminds: days from the due date (negative: before it), each with an
#: optional template key (NULL: the standard ``payment_reminder`` templates).
reminder_offsets = Table(
    "reminder_offsets",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("offset_days", Integer, primary_key=True),
    Column("template", String(40)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("business", Boolean, nullable=False, default=False, server_default=false()),  # +3b
)

#: One row per (invoice, offset) ever decided: ``claimed`` (a scheduler won it and is publishing),
#: ``published`` (RabbitMQ confirmed it) or ``superseded`` (missed, and a later one went instead).
reminders_sent = Table(
    "reminders_sent",
    metadata,
    Column("org_id", String(200), primary_key=True),
    Column("invoice_id", String(200), primary_key=True),
    Column("offset_days", Integer, primary_key=True),
    Column("event_id", String(200)),  # NULL when superseded
    Column("status", String(40), nullable=False),  # 40: deferred_collection_pending
    Column("at", DateTime(timezone=True), nullable=False),  # when claimed / last changed
    Column("fire_at", DateTime(timezone=True)),  # when it was due (NULL: decided before 0011)
    Column("moved_from", Date),  # the date it fell on when moved to the next business day
    # Why it moved (the holiday's name, "Saturday", "Sunday") or waits (the payment's status).
    Column("moved_reason", String(200)),
    # deferred_collection_pending: the GoCardless payment it waits for, and the day it may go after.
    Column("payment_id", String(40)),
    Column("resume_after", Date),
    Index("ix_reminders_sent_status", "status", "at"),
)


# --- Statuses back to the upstream: the status outbox, webhook endpoints, deliveries, attempts -----
#: One row per outward status event (``schemas.status_events``), written in the same transaction as
#: the change it reports. ``id`` orders them; ``msg_id`` is the event's ``webhook-id``, the same
#: whoever writes it twice (the row is kept once). ``fanned_out_at``: copied to the organisation's
#: webhook deliveries; ``published_at``: confirmed on the ``PREFIX.notifications`` exchange.
status_outbox = Table(
    "status_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("msg_id", String(40), nullable=False, unique=True),
    Column("org_id", String(200), nullable=False),
    Column("type", String(40), nullable=False),
    # What orders it: the notification's id (or the payment's, mandate's, invoice's).
    Column("subject", String(200), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("fanned_out_at", DateTime(timezone=True)),
    Column("published_at", DateTime(timezone=True)),
    Index("ix_status_outbox_fan_out", "fanned_out_at", "id"),
    Index("ix_status_outbox_publish", "published_at", "id"),
    Index("ix_status_outbox_org", "org_id", "created_at"),
)

#: An organisation's webhook endpoint. ``secrets``: ``[{"secret": "whsec_…", "expires_at": iso|null}]``,
#: newest first, every unexpired one signs (rotation). ``event_types``: NULL for every type.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("endpoint_id", String(40), primary_key=True),
    Column("org_id", String(200), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("event_types", JSON),
    Column("secrets", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True)),
    Column("paused_at", DateTime(timezone=True)),
    Column("paused_reason", String(500)),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    # Which webhooks process delivers it now, and until when (a dead one's lease runs out).
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime(timezone=True)),
    Index("ix_webhook_endpoints_org", "org_id"),
)

#: One status event to one endpoint: ``pending`` until ``delivered`` (2xx) or ``gave_up`` (retried
#: for the whole retry window).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("outbox_id", BigInteger, nullable=False),
    Column("subject", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_status_code", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("endpoint_id", "outbox_id", name="uq_webhook_delivery"),
    Index("ix_webhook_deliveries_due", "endpoint_id", "status", "outbox_id"),
    Index("ix_webhook_deliveries_outbox", "outbox_id"),  # retention: an outbox row's deliveries
)

#: Every HTTP attempt of a delivery: what ``herald webhooks deliveries`` shows.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("endpoint_id", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),  # NULL: no answer (timeout, refused connection)
    Column("outcome", String(20), nullable=False),  # delivered, retry, gave_up
    Column("error", String(500)),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_endpoint", "endpoint_id", "at"),
    Index("ix_webhook_attempts_delivery", "delivery_id"),  # retention: a delivery's attempts
)


#: Notifications decided inside their recipient's quiet hours, held in the store (never on the
#: broker's delay queue) until ``release_at``; the scheduler releases them in ``id`` order (the
#: order they were decided), once. ``outcome``: ``released``, or why it was settled unsent
#: (``already_paid``, ``opted_out``).
held_notifications = Table(
    "held_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", String(40), nullable=False, unique=True),
    Column("org_id", String(200), nullable=False),
    Column("release_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True)),
    Column("outcome", String(40)),
    ForeignKeyConstraint(["notification_id"], ["notifications.id"]),
    Index("ix_held_due", "released_at", "release_at"),
)
