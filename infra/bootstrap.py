"""The composition root: builds the store and provider clients once, at start-up.

Workers boot it from the ``Lifecycle`` middleware; the CLI boots it per
command; tests boot it with fakes. Nothing else constructs clients.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from infra.adapters.email import EmailGateway, SmtpConfig, SmtpEmail
from infra.adapters.gocardless import DirectDebit, GoCardlessDirectDebit
from infra.adapters.gocardless_client import build_gocardless_client
from infra.adapters.sms import SmsGateway, TwilioSms
from infra.errors import ConfigurationError
from infra.settings import Settings, get_settings
from infra.store.db import READ_ONLY, make_engine
from infra.store.migrate import upgrade


@dataclass
class Services:
    """Everything the stages need, built once per process."""

    settings: Settings
    engine: Engine
    _sms: SmsGateway | None = None
    _email: EmailGateway | None = None
    _direct_debit: DirectDebit | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def sms(self) -> SmsGateway:
        """The SMS gateway; built on first use so stages without SMS need no Twilio settings."""
        with self._lock:
            if self._sms is None:
                self._sms = build_twilio(self.settings)
            return self._sms

    @property
    def email(self) -> EmailGateway:
        """The email gateway; built on first use so stages without email need no SMTP settings."""
        with self._lock:
            if self._email is None:
                self._email = build_smtp(self.settings)
            return self._email

    @property
    def direct_debit(self) -> DirectDebit:
        """GoCardless Direct Debit; built on first use so stages without it need no GoCardless settings."""
        with self._lock:
            if self._direct_debit is None:
                self._direct_debit = GoCardlessDirectDebit(build_gocardless_client(self.settings))
            return self._direct_debit

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One database transaction, committed on success."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: on SQLite it does not wait for the write lock."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn


def require(settings: Settings, *names: str) -> None:
    """Raise ``ConfigurationError`` naming every missing ``HERALD_`` setting."""
    missing = [f"HERALD_{n.upper()}" for n in names if not getattr(settings, n)]
    if missing:
        raise ConfigurationError(f"missing setting(s): {', '.join(missing)}")


def build_twilio(settings: Settings) -> TwilioSms:
    """The Twilio adapter from settings."""
    require(settings, "twilio_account_sid", "twilio_auth_token")
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    return TwilioSms(
        str(settings.twilio_account_sid),
        token,
        settings.twilio_base_url,
        settings.twilio_timeout_seconds,
    )


def build_smtp(settings: Settings) -> SmtpEmail:
    """The SMTP adapter from settings."""
    require(settings, "smtp_from")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpEmail(
        SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=str(settings.smtp_from),
            username=settings.smtp_username,
            password=password,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )
    )


_services: Services | None = None
_boot_lock = threading.Lock()


def bootstrap(
    settings: Settings | None = None,
    *,
    sms: SmsGateway | None = None,
    email: EmailGateway | None = None,
    direct_debit: DirectDebit | None = None,
    migrate: bool = True,
) -> Services:
    """Build (or return the already built) services of this process."""
    global _services
    with _boot_lock:
        if _services is None:
            settings = settings or get_settings()
            engine = make_engine(settings.database_url.get_secret_value())
            if migrate:
                upgrade(engine)
            _services = Services(
                settings=settings, engine=engine, _sms=sms, _email=email, _direct_debit=direct_debit
            )
        return _services


def services() -> Services:
    """The booted services; an actor running before boot is a wiring bug."""
    if _services is None:
        raise ConfigurationError("herald services were not booted; call infra.bootstrap.bootstrap() first")
    return _services


def shutdown() -> None:
    """Release connections (explicit shut-down, the mirror of ``bootstrap``)."""
    global _services
    with _boot_lock:
        if _services is not None:
            _services.engine.dispose()
            _services = None


def describe(services_: Services) -> dict[str, Any]:
    """What was booted, safe to log (no secrets)."""
    return {"database": services_.engine.url.render_as_string(hide_password=True)}
