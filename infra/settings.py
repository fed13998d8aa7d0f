"""The one typed settings object. No other module reads the environment.

Every name is ``HERALD_`` + the field name in upper case (``HERALD_AMQP_URL``),
read from the environment or a ``.env`` file. Secrets are ``SecretStr`` so
they never print in reprs, logs or errors.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from zoneinfo import available_timezones

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.amqp_nodes import split_urls
from schemas.messages import MAX_BATCH_ITEMS

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
TWILIO_API_URL = "https://api.twilio.com"
#: Vonage's hosts, as the ``vonage`` SDK takes them: a bare host (it always prepends ``https://``).
VONAGE_REST_HOST = "rest.nexmo.com"
VONAGE_API_HOST = "api.nexmo.com"
GOCARDLESS_API_URL = "https://api.gocardless.com"


def parse_relays(value: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` → ``[(host, port), ...]``; ``ValueError`` naming the wrong entry."""
    relays: list[tuple[str, int]] = []
    for number, entry in enumerate((e.strip() for e in value.split(",") if e.strip()), start=1):
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"relay #{number} {entry[:80]!r}: expected host:port")
        if any(c.isspace() or ord(c) < 32 for c in host) or len(host) > 253:
            raise ValueError(f"relay #{number}: not a host name")
        relays.append((host, int(port)))
    if len(relays) > 5:
        raise ValueError("at most 5 fallback relays")
    return relays


class Settings(BaseSettings):
    """herald's configuration, from ``HERALD_*`` environment variables or ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="HERALD_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # A wrong value is named in the error, never echoed: URLs and tokens carry secrets.
        hide_input_in_errors=True,
    )

    # Broker and store. URLs may carry passwords, hence SecretStr.
    #: RabbitMQ's AMQP URL, or one per node of a RabbitMQ cluster, comma-separated: each process
    #: connects to the first that answers and moves on to the next when its connection is lost
    #: (list each host's nearest node first). Several nodes need ``queue_type=quorum`` and PostgreSQL.
    amqp_url: SecretStr = SecretStr(DEFAULT_AMQP_URL)
    #: SQLAlchemy URL: SQLite, or PostgreSQL with psycopg 3 (``postgresql+psycopg://user:pass@host/db``,
    #: ``pip install '.[postgres]'``). Migrations run on start.
    database_url: SecretStr = SecretStr("sqlite:///herald.db")
    #: Namespace of the queues and of the ``PREFIX.events`` exchange: one per deployment on a shared RabbitMQ.
    queue_prefix: str = Field("herald", pattern=r"^[a-zA-Z_][a-zA-Z0-9_-]*$")
    #: How long each stage's dead-letter queue (``.XQ``) keeps a message.
    dead_message_ttl_days: int = Field(7, ge=1, le=365)
    #: ``quorum`` replicates the stage queues across a RabbitMQ cluster; a queue cannot change type
    #: once declared, so switching needs a new ``queue_prefix`` (or the queues deleted first).
    queue_type: Literal["classic", "quorum"] = "classic"
    #: Quorum queues only: deliveries of one message (crashes included) before it is dead-lettered.
    delivery_limit: int = Field(20, ge=1)
    #: Run classic (unreplicated) queues against a multi-node ``amqp_url`` anyway; refused otherwise.
    allow_classic_queues_on_cluster: bool = False
    #: Run on SQLite with a multi-node ``amqp_url`` anyway (every process on one host); refused otherwise.
    allow_sqlite_on_cluster: bool = False

    # Twilio (SMS).
    #: Twilio's account SID; required by the ``sms`` stage.
    twilio_account_sid: str | None = None
    #: Twilio's auth token; required by the ``sms`` stage and by the api's status callbacks.
    twilio_auth_token: SecretStr | None = None
    #: The sender of organisations without one of their own; required by the ``sms`` stage.
    twilio_from: str | None = None
    #: Twilio's API; point it at ``herald sandbox twilio`` for demos and tests.
    twilio_base_url: str = TWILIO_API_URL
    #: Each Twilio request.
    twilio_timeout_seconds: float = Field(10.0, gt=0)
    #: SMS of one batch on the wire to Twilio at once: the threads of the ``sms`` stage's sending
    #: pool, each reusing a kept-alive HTTPS connection (per process; at most this many are kept).
    sms_send_concurrency: int = Field(16, ge=1, le=256)
    #: A kept-alive connection to Twilio idle longer than this is closed and a new one opened, so a
    #: request seldom meets a connection the server is closing (that would leave it ambiguous).
    twilio_keepalive_idle_seconds: float = Field(30.0, ge=0)
    # The shared per-sender rate limit, in SMS segments per second across every ``sms`` process
    # (Twilio's long-code default is 1). 0 turns it off. ``sms_sender_rates`` overrides it per
    # sender (toll-free numbers, short codes and alphanumeric senders go faster), as JSON:
    # HERALD_SMS_SENDER_RATES='{"+18005550100": 3, "ACME": 10}'.
    sms_segments_per_second: float = Field(1.0, ge=0)
    #: Per sender, overriding ``sms_segments_per_second``, as JSON.
    sms_sender_rates: dict[str, float] = Field(default_factory=dict)
    # Longest a worker thread waits in-process for its sender's next slot; longer waits go back to
    # the queue with that delay, so a busy sender never ties up every thread.
    sms_rate_max_wait_seconds: float = Field(5.0, ge=0)
    # Circuit breakers, one per SMS provider, shared by every ``sms`` process through the store
    # (docs/failover.md): a run of transient failures or timeouts within the window opens one;
    # after the cool-down it admits a few trial sends; a success closes it.
    #: Transient failures or timeouts within the window that open a provider's breaker (0: off).
    sms_breaker_failures: int = Field(5, ge=0)
    #: The window in which those failures count, in seconds.
    sms_breaker_window_seconds: float = Field(60.0, gt=0)
    #: How long an open breaker admits nothing before it admits trial sends, in seconds.
    sms_breaker_cool_down_seconds: float = Field(30.0, ge=0)
    #: Trial sends a half-open breaker admits before one of them answers.
    sms_breaker_trials: int = Field(3, ge=1)

    # Vonage (the second SMS provider), through the official ``vonage`` SDK.
    #: Vonage's API key; required to send through Vonage and to check its signed receipts.
    vonage_api_key: str | None = None
    #: Vonage's API secret: sends are authenticated with key + secret only (never signed: the SDK
    #: signs over empty optional fields it does not send, and Vonage refuses with status 14).
    vonage_api_secret: SecretStr | None = None
    #: The signature secret Vonage signs delivery receipts with (``POST /callbacks/vonage``).
    vonage_signature_secret: SecretStr | None = None
    #: How Vonage signs receipts (the account's setting): md5 (HMAC-MD5, the SDK's default), sha1,
    #: sha256 or sha512.
    vonage_signature_method: Literal["md5", "sha1", "sha256", "sha512"] = "md5"
    #: The sender of organisations without one of their own, on Vonage.
    vonage_from: str | None = None
    #: The SMS API's host (``host[:port]``, no scheme: the SDK always speaks https to it); the
    #: sandbox's address for demos and tests (``herald sandbox vonage``, which speaks TLS).
    vonage_rest_url: str = Field(VONAGE_REST_HOST, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    #: The API host (Reports API: reconciliation and statuses; the account's balance), as above.
    vonage_api_url: str = Field(VONAGE_API_HOST, pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
    #: A CA bundle (PEM file) to trust for Vonage's hosts instead of the system's: the sandbox's CA
    #: (proxy and CA variables of the environment are then not read for Vonage).
    vonage_ca_bundle: str | None = None
    #: Each Vonage request, in whole seconds (the SDK takes an integer).
    vonage_timeout_seconds: int = Field(10, ge=1, le=120)
    #: How long after a send Vonage's Reports API may still not list it: before then, "no such
    #: message" is not an answer, and reconciliation waits rather than resend.
    vonage_reports_lag_seconds: float = Field(300.0, ge=0)

    # Sending retries (every channel). In-call: tenacity, for transient answers, a few quick tries
    # within one message; then message-level: dramatiq redelivers with exponential backoff and
    # jitter (HERALD_MIN/MAX_BACKOFF_MS) or the provider's Retry-After, until the deadline, after
    # which the notification is recorded ``failed`` / ``gave_up``.
    #: In-call tries of a provider for one message.
    send_call_attempts: int = Field(3, ge=1, le=10)
    #: The longest ``Retry-After`` waited in-call; a longer one goes back to the queue.
    send_call_max_wait_seconds: float = Field(5.0, ge=0)
    #: After this long since the first try, a still-failing send is ``failed`` / ``gave_up``.
    send_retry_deadline_seconds: float = Field(3600.0, gt=0)

    # SMTP (email).
    #: The SMTP server of the ``email`` stage.
    smtp_host: str = "127.0.0.1"
    #: Its port.
    smtp_port: int = Field(25, ge=1, le=65535)
    #: The sender address; required by the ``email`` stage.
    smtp_from: str | None = None
    #: Log in with it when set.
    smtp_username: str | None = None
    #: The password of ``smtp_username``.
    smtp_password: SecretStr | None = None
    #: STARTTLS before logging in and sending.
    smtp_starttls: bool = False
    #: Each SMTP connection and command.
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    #: Emails of one batch on the wire at once: the threads of the ``email`` stage's sending pool,
    #: each keeping one SMTP connection open across messages (per process).
    smtp_send_concurrency: int = Field(4, ge=1, le=64)
    #: A kept SMTP connection idle longer than this is closed (QUIT) and a new one opened; servers
    #: drop idle sessions on their own.
    smtp_keepalive_idle_seconds: float = Field(30.0, ge=0)
    #: More SMTP relays to fail over to, in order, comma-separated ``host:port``
    #: (docs/failover.md): each with the same sender, login and STARTTLS as ``smtp_host``, and a
    #: circuit breaker of its own (the ``sms_breaker_*`` settings). Empty: ``smtp_host`` alone.
    smtp_relays: str = ""

    # Preference links and one-click unsubscribe (docs/preferences.md).
    #: Signs the links to a contact's preference page and the one-click unsubscribe URLs
    #: (HMAC-SHA256). Without it no email carries a link and the page refuses every token.
    link_secret: SecretStr | None = None
    #: The name of ``link_secret`` inside each token, so a new secret can take over while links
    #: signed with the old one still open (``link_previous_secrets``).
    link_key_id: str = Field("k1", pattern=r"^[A-Za-z0-9_-]{1,16}$")
    #: Secrets retired from signing that still open the links they signed, as
    #: ``keyid=secret,keyid=secret``.
    link_previous_secrets: SecretStr | None = None
    #: How long a preference or unsubscribe link opens the page.
    link_ttl_days: int = Field(90, ge=1, le=3650)
    #: The ``mailto:`` of ``List-Unsubscribe`` (a mailbox someone reads); ``smtp_from`` when unset.
    unsubscribe_mailto: str | None = None

    # GoCardless (Direct Debit).
    #: Required by the ``collect`` stage, ``herald gocardless sync`` and the webhooks.
    gocardless_access_token: SecretStr | None = None
    #: GoCardless's live API; point it at ``herald sandbox gocardless`` for demos and tests.
    gocardless_base_url: str = GOCARDLESS_API_URL
    #: Checks ``Webhook-Signature`` on ``/webhooks/gocardless`` (498 when wrong).
    gocardless_webhook_secret: SecretStr | None = None

    # Where Twilio and GoCardless call back (status callbacks, webhooks).
    public_url: str | None = None
    # Region used to parse national phone numbers, ISO 3166 alpha-2.
    default_region: str = Field("FI", min_length=2, max_length=2)

    # Producer limits.
    #: Events over this are refused at the producer.
    max_event_bytes: int = Field(64 * 1024, ge=1024)
    publish_window: int = Field(5000, ge=1, description="confirms kept in flight at once")
    #: Longest a publisher waits for RabbitMQ (connecting, confirms).
    publish_timeout_seconds: float = Field(10.0, gt=0)
    # HTTP API: request bodies over this are refused (413) before they are read into memory.
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024)

    # Input limits (docs: "Limits"). String lengths of the event contract are fixed in the schema
    # (schemas/), where the JSON Schema publishes them; these are the operational bounds.
    #: Events in one ``POST /events`` batch; more is refused whole (413), naming the limit.
    max_batch_events: int = Field(1000, ge=1)
    #: Deepest nesting of objects and arrays in one event, import row, callback or webhook body.
    max_json_depth: int = Field(32, ge=4, le=200)
    #: A template part's source, in characters, when it is saved.
    template_max_source_chars: int = Field(20_000, ge=100)
    #: A rendered email part (subject excepted), in characters. SMS bodies stop at 1,600.
    template_max_email_chars: int = Field(100_000, ge=1000)
    #: A rendered email subject, in characters.
    template_max_subject_chars: int = Field(300, ge=20)
    #: Longest one template may render for; past it rendering stops with a permanent error.
    template_render_timeout_seconds: float = Field(1.0, gt=0)
    #: Compiled templates kept in each process's cache, bounded by their source size in bytes.
    template_cache_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024)

    # HTTP API exposure: ``public`` (no key), ``key`` (any valid API key) or ``off`` (404).
    #: ``/docs``, ``/redoc`` and ``/openapi.json``: the contract, no data.
    api_docs_exposure: Literal["public", "key", "off"] = "public"
    #: The api process's ``/metrics``: counts only, no personal data.
    api_metrics_exposure: Literal["public", "key", "off"] = "public"
    #: Failed authentications allowed per client address per minute; past it, 429 with Retry-After.
    api_auth_failures_per_minute: int = Field(20, ge=1)

    # Worker processes (``herald worker STAGE``).
    #: Processes of each ``herald worker STAGE``.
    worker_processes: int = Field(1, ge=1)
    #: Threads of each worker process; unset: 1 for route, render, sms and history (they take what
    #: waits as one batch, so more threads only compete with the one writing), 4 for the others.
    worker_threads: int | None = Field(None, ge=1)
    #: The most items (events, notifications, status reports) one stage message carries: a stage
    #: handles them in one transaction and hands them on in one confirmed message. 1 puts each item
    #: in a message of its own; messages queued under a larger value are still handled after it is
    #: lowered. Unset: 200 on SQLite, 100 otherwise (``batch_size``).
    stage_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH_ITEMS)
    #: Message-level retries of a transient failure before the message is dead-lettered.
    max_retries: int = Field(10, ge=0)
    #: Shortest message-level backoff (exponential, full jitter).
    min_backoff_ms: int = Field(500, ge=1)
    #: Longest message-level backoff.
    max_backoff_ms: int = Field(300_000, ge=1)
    #: On SIGTERM, how long in-flight messages may take to finish; what is still running then is
    #: returned to its queue unacknowledged (idempotency makes the redelivery harmless).
    shutdown_timeout_seconds: float = Field(30.0, gt=0)

    # Reminder scheduler: a reminder ``offset`` days from the due date fires that local day at this
    # hour, in the organisation's time zone (``herald orgs set --reminder-hour`` overrides it).
    #: The local hour reminders fire at, for organisations without their own.
    reminder_hour: int = Field(9, ge=0, le=23)
    #: The IANA time zone of organisations without their own (``herald orgs set --timezone``).
    default_timezone: str = Field("UTC", max_length=64)
    #: Send windows of organisations without their own, in the recipient's local time, comma-separated
    #: ``channel=HH:MM-HH:MM`` or ``channel=any`` (``herald orgs set --send-window`` overrides them).
    default_send_windows: str = Field(
        "sms=08:00-21:00,email=any",
        max_length=200,
        pattern=r"^(?:[a-z_]+(?::[a-z]+)?=(?:any|\d\d:\d\d-\d\d:\d\d))(?:,[a-z_]+(?::[a-z]+)?=(?:any|\d\d:\d\d-\d\d:\d\d))*$",
    )
    # The status sweep (each scheduler tick; ``herald status-sweep``): an SMS ``sent`` for longer than
    # ``after`` is looked up at Twilio, at most once every ``every`` seconds, at most ``batch`` per
    # tick (oldest first), and no more once it has been ``sent`` for ``max_age_hours``.
    status_sweep_after_seconds: float = Field(600.0, ge=0)
    #: Each SMS is looked up at most once this often.
    status_sweep_every_seconds: float = Field(1800.0, ge=0)
    #: At most this many per tick, longest unasked first; 0 turns the sweep off.
    status_sweep_batch: int = Field(200, ge=0)
    #: Not looked up any more this long after it was sent (some carriers never report).
    status_sweep_max_age_hours: float = Field(72.0, gt=0)

    # Statuses back to the upstream (the ``webhooks`` process; docs: "Statuses back to your system").
    #: Longest one webhook request may take (connecting and the answer); past it, the attempt failed.
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=300)
    #: The wait after a delivery's first failed attempt; it doubles each attempt (with jitter).
    webhook_retry_base_seconds: float = Field(5.0, gt=0)
    #: The longest wait between two attempts of one delivery (a ``Retry-After`` may ask for more).
    webhook_retry_max_seconds: float = Field(3600.0, gt=0)
    #: A delivery still failing this long after its first attempt is given up (kept, replayable).
    webhook_retry_window_hours: float = Field(72.0, gt=0)
    #: Days a status event is kept once the ``webhooks`` process is done with it (fanned out,
    #: published, no delivery pending); then it goes, with its deliveries and their attempts. How
    #: far back ``herald webhooks replay`` and ``deliveries`` reach.
    webhook_retention_days: float = Field(30.0, gt=0)
    #: Failed attempts in a row after which an endpoint is paused until an operator resumes it; 0: never.
    webhook_pause_after_failures: int = Field(50, ge=0)
    #: After ``herald webhooks rotate-secret``, how long the previous secret keeps signing too.
    webhook_secret_overlap_hours: float = Field(24.0, ge=0)
    #: Deliveries to one endpoint in flight at once (each of a different notification: one
    #: notification's events always go one after another).
    webhook_concurrency: int = Field(8, ge=1, le=64)
    #: How often the ``webhooks`` process looks for new events when it has nothing to do.
    webhook_poll_seconds: float = Field(0.5, gt=0)
    #: Publish every status event to the topic exchange ``PREFIX.notifications`` too (routing key:
    #: the event type), with publisher confirms, for upstreams that consume from RabbitMQ.
    status_exchange: bool = True

    #: The least severe level logged.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: ``json`` lines on stderr, or ``console`` for people.
    log_format: Literal["json", "console"] = "json"

    # Observability. Each process type serves Prometheus /metrics on metrics_port + its offset
    # (infra.metrics.METRICS_OFFSETS); 0 turns every exposition server off. 0.0.0.0 by default
    # because Prometheus scrapes from another host; /metrics carries no personal data.
    metrics_port: int = Field(9410, ge=0, le=65535)
    #: Where the ``/metrics`` servers listen.
    metrics_host: str = "0.0.0.0"  # noqa: S104
    # Set by ``herald worker`` for dramatiq's processes: prometheus_client's own variable, and the stage.
    metrics_multiproc_dir: str | None = Field(None, validation_alias="PROMETHEUS_MULTIPROC_DIR")
    #: Set by ``herald worker`` for its dramatiq processes: the stage they serve.
    metrics_stage: str | None = None
    # RabbitMQ's management API (message rates for ``herald status``); default: the AMQP host, port
    # 15672, the AMQP credentials.
    rabbitmq_management_url: SecretStr | None = None
    # How long /readyz waits for the broker and the database.
    readiness_timeout_seconds: float = Field(2.0, gt=0)

    @field_validator("default_timezone")
    @classmethod
    def _iana_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError("not an IANA time zone (e.g. Europe/Helsinki)")
        return value

    @field_validator("amqp_url")
    @classmethod
    def _check_amqp_urls(cls, value: SecretStr) -> SecretStr:
        split_urls(value.get_secret_value())  # ValueError naming the wrong entry, password masked
        return value

    @field_validator("smtp_relays")
    @classmethod
    def _check_relays(cls, value: str) -> str:
        parse_relays(value)  # ValueError naming the wrong entry
        return value

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @field_validator("twilio_base_url", "gocardless_base_url", "public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def smtp_relay_addresses(self) -> list[tuple[str, int]]:
        """The fallback SMTP relays, ``(host, port)`` each, in order."""
        return parse_relays(self.smtp_relays)

    @property
    def amqp_urls(self) -> list[str]:
        """The broker's nodes in the order processes try them (one for a single broker)."""
        return split_urls(self.amqp_url.get_secret_value())

    @property
    def batch_size(self) -> int:
        """``stage_batch_size``, or when it is unset 200 on SQLite and 100 on other databases.

        On SQLite the stages take turns for one writer, and a larger batch shares out the cost of
        each turn (a transaction begun and committed, a message handed on) over more items: 945 →
        1,019 notifications/s from 100 to 200 (issue 15), with a route worker at 92 MB. On
        PostgreSQL 200 raised the rate (711 to 775 per second) but not steadily the latency at 200
        events/s (a p99 of 135 ms in its one run), and an sms worker peaked at 97 MB against a
        target of 100: there it stays 100.
        """
        if self.stage_batch_size is not None:
            return self.stage_batch_size
        return 200 if self.database_url.get_secret_value().startswith("sqlite") else 100

    def threads_for(self, stage: str) -> int:
        """A worker process's threads for ``stage``: ``worker_threads``, or when it is unset 1 for a
        stage that gathers batches and 4 for the others.

        Such a stage (route, render, sms, history) takes what waits as one batch, and sends a
        batch's messages concurrently on a pool of its own, so its threads are not what makes it
        concurrent; more of them only compete for the interpreter with the one that holds the
        database (issue 15). On SQLite, where every stage waits for one writer, it held the lock
        1.5 times as long with 4 threads: 841 notifications/s against 983 with 1. On PostgreSQL
        4 threads did 688 to 711 per second with a p99 of 115 to 163 ms at 200 events/s, 1 thread
        715 to 732 with 86 to 88 ms. Collect handles one invoice a message and email sends through
        relays that may be slow to answer: their threads overlap those waits.
        """
        if self.worker_threads is not None:
            return self.worker_threads
        return 1 if stage in GATHERING_STAGES else 4

    @property
    def dead_message_ttl_ms(self) -> int:
        """How long a dead-lettered message is kept, in milliseconds."""
        return self.dead_message_ttl_days * 86_400_000


#: The stages that take what waits in their queue as one batch (``workers.registry.GATHERED``).
GATHERING_STAGES = frozenset({"route", "render", "sms", "history"})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
