"""The composition root: builds the store, the emitter and the provider clients, at start-up.

``bootstrap(settings)`` is the explicit start-up and ``shutdown(services)`` the shut-down (arq
style). Each call builds what it is given, never anything else: there is no process-wide instance
that a second call could silently return with other settings or other clients. A worker process
boots its services from its ``Lifecycle`` middleware (``workers.start``) after dramatiq forked it;
each CLI command boots its own with the settings its root callback read (``BootOnce``); the api
on its first request; tests boot theirs with fakes and the broker of their choice. Nothing else
constructs clients, and nothing here reads the environment: settings are always given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from infra import amqp_nodes
from infra.adapters.email import EmailGateway, SmtpConfig, SmtpEmail
from infra.adapters.gocardless import DirectDebit, GoCardlessDirectDebit
from infra.adapters.gocardless_client import build_gocardless_client
from infra.adapters.sms import SmsGateway, TwilioSms
from infra.broker import Emitter, build_broker
from infra.errors import ConfigurationError
from infra.settings import Settings
from infra.store.db import READ_ONLY, make_engine
from infra.store.migrate import upgrade

if TYPE_CHECKING:
    from infra.adapters.vonage_sms import VonageSms

#: How long a thread waits for its process's turn to write to SQLite (SQLite's busy timeout).
SQLITE_WRITE_WAIT_SECONDS = 30


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Everything the stages need, built once per process."""

    settings: Settings
    engine: Engine
    _sms: SmsGateway | None = None
    _vonage_sms: SmsGateway | None = None
    #: SMS gateways given by name (tests register a second provider so), besides ``SMS_PROVIDERS``.
    _sms_gateways: dict[str, SmsGateway] = field(default_factory=dict, repr=False)
    _email: EmailGateway | None = None
    #: The fallback SMTP relays built so far, by name (``email_relay``).
    _relays: dict[str, EmailGateway] = field(default_factory=dict, repr=False)
    _direct_debit: DirectDebit | None = None
    _emitter: Emitter | None = None
    #: Whether the emitter's broker was built here (then ``shutdown`` closes it).
    _owns_broker: bool = False
    #: Provider clients built here (closed at shut-down); given ones are closed by whoever gave them.
    _built: list[SmsGateway | EmailGateway] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Write transactions of this process, one at a time on SQLite (``transaction``).
    _writers: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: The clock the stages decide by (quiet hours); tests give their own to simulate days.
    clock: Callable[[], datetime] = field(default_factory=lambda: _utcnow, repr=False)

    @property
    def emitter(self) -> Emitter:
        """Sends stage messages and events; a broker of its own is built on first use (no
        connection until something is sent) unless the composition root gave one."""
        with self._lock:
            if self._emitter is None:
                self._emitter = Emitter(build_broker(self.settings), self.settings.queue_prefix)
                self._owns_broker = True
            return self._emitter

    @property
    def sms(self) -> SmsGateway:
        """The SMS gateway; built on first use so stages without SMS need no Twilio settings."""
        with self._lock:
            if self._sms is None:
                self._sms = build_twilio(self.settings)
                self._built.append(self._sms)
            return self._sms

    def sms_gateway(self, provider: str) -> SmsGateway | None:
        """The gateway of an SMS provider by name (``SMS_PROVIDERS``, or one the composition root
        was given), or None when this deployment has none by that name (not configured)."""
        given = self._sms_gateways.get(provider)
        if given is not None:
            return given
        build = SMS_PROVIDERS.get(provider)
        if build is None:
            return None
        try:
            return build(self)
        except ConfigurationError:
            return None

    @property
    def vonage_sms(self) -> SmsGateway:
        """The Vonage SMS gateway; built on first use so processes without it need no Vonage
        settings. Which provider a message goes through is the sms stage's routing, not this."""
        with self._lock:
            if self._vonage_sms is None:
                self._vonage_sms = build_vonage(self.settings)
                self._built.append(self._vonage_sms)
            return self._vonage_sms

    @property
    def email(self) -> EmailGateway:
        """The email gateway; built on first use so stages without email need no SMTP settings."""
        with self._lock:
            if self._email is None:
                self._email = build_smtp(self.settings)
                self._built.append(self._email)
            return self._email

    def email_relays(self) -> list[str]:
        """The SMTP relays in order of preference: ``smtp`` (``HERALD_SMTP_HOST``), then
        ``smtp-2``, ``smtp-3``, … (``HERALD_SMTP_RELAYS``)."""
        return [PRIMARY_RELAY] + [f"smtp-{n}" for n in range(2, len(self.settings.smtp_relay_addresses) + 2)]

    def email_relay(self, name: str) -> EmailGateway | None:
        """One relay's gateway by name (built on first use), or None for no such relay."""
        if name == PRIMARY_RELAY:
            return self.email
        names = self.email_relays()
        if name not in names:
            return None
        with self._lock:
            if name not in self._relays:
                host, port = self.settings.smtp_relay_addresses[names.index(name) - 1]
                self._relays[name] = build_smtp(self.settings, host=host, port=port)
                self._built.append(self._relays[name])
            return self._relays[name]

    @property
    def direct_debit(self) -> DirectDebit:
        """GoCardless Direct Debit; built on first use so stages without it need no GoCardless settings."""
        with self._lock:
            if self._direct_debit is None:
                self._direct_debit = GoCardlessDirectDebit(build_gocardless_client(self.settings))
            return self._direct_debit

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction, committed on success.

        On SQLite the threads of a process take turns for it here, before ``BEGIN IMMEDIATE``:
        SQLite has one writer at a time, and a writer it makes wait polls with sleeps growing to
        100 ms, so threads queued there wake long after the lock was free (at 200 events/s they
        spent half their time so: issue 15). A thread waiting on this lock starts the moment the
        one before commits; SQLite still arbitrates between processes. Waiting here is bounded by
        the same 30 s as SQLite's own wait, after which SQLite decides as it did before.
        """
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as conn:
                yield conn
            return
        turn = self._writers.acquire(timeout=SQLITE_WRITE_WAIT_SECONDS)
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            if turn:
                self._writers.release()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: on SQLite it does not wait for the write lock."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn


#: The name of the SMTP relay of ``HERALD_SMTP_HOST`` (its breaker's, its attempts').
PRIMARY_RELAY = "smtp"

#: The SMS providers an organisation may list (``herald orgs set --sms-providers``), by name: how
#: the services get each one's gateway (built once, on first use; ``ConfigurationError`` when its
#: settings are missing, and then the provider is skipped). A new provider is one line here.
SMS_PROVIDERS: dict[str, Callable[[Services], SmsGateway]] = {
    "twilio": lambda services: services.sms,
    "vonage": lambda services: services.vonage_sms,
}


def require(settings: Settings, *names: str) -> None:
    """Raise ``ConfigurationError`` naming every missing ``HERALD_`` setting."""
    missing = [f"HERALD_{n.upper()}" for n in names if not getattr(settings, n)]
    if missing:
        raise ConfigurationError(f"missing setting(s): {', '.join(missing)}")


def check_cluster(settings: Settings, *, store: bool) -> None:
    """Refuse what a RabbitMQ cluster (several nodes in ``HERALD_AMQP_URL``) cannot run on, unless
    the settings allow it: classic queues, and with ``store`` SQLite (``ConfigurationError``)."""
    urls = settings.amqp_urls
    amqp_nodes.check_cluster_queues(
        urls, settings.queue_type, allowed=settings.allow_classic_queues_on_cluster
    )
    if store:
        amqp_nodes.check_cluster_store(
            urls, settings.database_url.get_secret_value(), allowed=settings.allow_sqlite_on_cluster
        )


def build_twilio(settings: Settings) -> TwilioSms:
    """The Twilio adapter from settings."""
    require(settings, "twilio_account_sid", "twilio_auth_token")
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    return TwilioSms(
        str(settings.twilio_account_sid),
        token,
        settings.twilio_base_url,
        settings.twilio_timeout_seconds,
        concurrency=settings.sms_send_concurrency,
        keepalive_idle=settings.twilio_keepalive_idle_seconds,
    )


def build_vonage(settings: Settings) -> VonageSms:
    """The Vonage adapter from settings: sends with key + secret only (never the signature
    secret: see ``infra.adapters.vonage_sms``); receipts asked to ``HERALD_PUBLIC_URL``."""
    # Imported here: the SDK (pydantic models for every Vonage API) adds ~20 MB to a process, which
    # only a deployment that sends through Vonage pays.
    from infra.adapters.vonage_sms import VonageSms

    require(settings, "vonage_api_key", "vonage_api_secret")
    secret = settings.vonage_api_secret.get_secret_value() if settings.vonage_api_secret else ""
    receipts = f"{settings.public_url}/callbacks/vonage" if settings.public_url else None
    return VonageSms(
        str(settings.vonage_api_key),
        secret,
        rest_host=settings.vonage_rest_url,
        api_host=settings.vonage_api_url,
        timeout=settings.vonage_timeout_seconds,
        receipts_url=receipts,
        ca_bundle=settings.vonage_ca_bundle,
        concurrency=settings.sms_send_concurrency,
        reports_lag=settings.vonage_reports_lag_seconds,
    )


def build_smtp(settings: Settings, *, host: str | None = None, port: int | None = None) -> SmtpEmail:
    """The SMTP adapter from settings (``host``/``port``: a fallback relay's, with the same login)."""
    require(settings, "smtp_from")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpEmail(
        SmtpConfig(
            host=host or settings.smtp_host,
            port=port or settings.smtp_port,
            sender=str(settings.smtp_from),
            username=settings.smtp_username,
            password=password,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        ),
        concurrency=settings.smtp_send_concurrency,
        keepalive_idle=settings.smtp_keepalive_idle_seconds,
    )


def bootstrap(
    settings: Settings,
    *,
    emitter: Emitter | None = None,
    sms: SmsGateway | None = None,
    vonage_sms: SmsGateway | None = None,
    email: EmailGateway | None = None,
    direct_debit: DirectDebit | None = None,
    sms_gateways: dict[str, SmsGateway] | None = None,
    migrate: bool = True,
) -> Services:
    """New services from ``settings`` (migrating the store unless told not to), with the clients
    given (fakes, or the emitter of the broker the caller declared its actors on; ``sms_gateways``:
    SMS providers by name, besides ``SMS_PROVIDERS``); the others are built from the settings on
    first use. ``shutdown`` them when done.

    ``ConfigurationError`` for SQLite with several broker nodes (``check_cluster``)."""
    check_cluster(settings, store=True)
    engine = make_engine(settings.database_url.get_secret_value())
    if migrate:
        upgrade(engine)
    return Services(
        settings=settings,
        engine=engine,
        _sms=sms,
        _vonage_sms=vonage_sms,
        _sms_gateways=dict(sms_gateways or {}),
        _email=email,
        _direct_debit=direct_debit,
        _emitter=emitter,
    )


def shutdown(services: Services) -> None:
    """Release the services' connections (explicit shut-down, the mirror of ``bootstrap``): the
    database's, and the broker's when the services built it (a given emitter's broker is its
    builder's to close)."""
    services.engine.dispose()
    with services._lock:
        emitter, owned = services._emitter, services._owns_broker
        built, services._built = services._built, []
    for client in built:  # the provider clients these services built (given ones are their giver's)
        client.close()
    if owned and emitter is not None:
        emitter.close()


class BootOnce:
    """Services booted from ``settings`` on first use, once (thread-safe): a process that may
    never need them (an api that has served no request yet, a CLI command) boots nothing before.
    ``emitter`` gives them the process's emitter (else they build their own on first use). Call it
    for the services; ``shutdown()`` releases them if they were booted."""

    def __init__(self, settings: Settings, emitter: Callable[[], Emitter] | None = None) -> None:
        self.settings = settings
        self._emitter = emitter
        self._services: Services | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Services:
        with self._lock:
            if self._services is None:
                emitter = self._emitter() if self._emitter is not None else None
                self._services = bootstrap(self.settings, emitter=emitter)
            return self._services

    def shutdown(self) -> None:
        with self._lock:
            booted, self._services = self._services, None
        if booted is not None:
            shutdown(booted)


def describe(services_: Services) -> dict[str, Any]:
    """What was booted, safe to log (no secrets)."""
    return {"database": services_.engine.url.render_as_string(hide_password=True)}
