"""In-memory stand-ins for the provider adapters (Cosmic Python's fakes): the SMS, email and Direct
Debit ports, recording what they were asked."""

from __future__ import annotations

import itertools
import smtplib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from twilio.base.exceptions import TwilioRestException

from infra.adapters.batch import Attempt, once, run_in_turn
from infra.adapters.email import OutgoingEmail, SentEmail, build_message, classify_smtp_error
from infra.adapters.gocardless import MandateSetup, PaymentRef, classify
from infra.adapters.sms import OutgoingSms, SentSms, classify_twilio_error
from infra.errors import PermanentProviderError, ProviderError
from schemas.directory import PayerDetails

# --- sms ---


@dataclass
class FakeSms:
    """An in-memory gateway for unit tests: records what it sent.

    ``refuse`` maps a number to the Twilio error code it answers with; ``busy`` maps a number to how
    many more tries are answered with a transient 429 (code 20429, ``Retry-After: busy_retry_after``
    when set) before it is sent; ``statuses`` maps a sent message's id to what ``fetch_status``
    answers (``("sent", None)`` when not set). ``tries`` lists the number of every ``send``.
    ``send_many`` keeps the real contract (one result per message, in order, errors as results,
    each message through ``attempt``) but sends one message after another, in the calling thread.
    ``closed`` tells whether ``close()`` was called.
    """

    refuse: dict[str, int] = field(default_factory=dict)
    sent: list[dict[str, str | None]] = field(default_factory=list)
    statuses: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    busy: dict[str, int] = field(default_factory=dict)
    busy_retry_after: float | None = None
    tries: list[str] = field(default_factory=list)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, *, to: str, sender: str, body: str, status_callback: str | None) -> SentSms:
        with self._lock:
            self.tries.append(to)
            busy = self.busy.get(to, 0)
            if busy:
                self.busy[to] = busy - 1
        if busy:
            exc = TwilioRestException(429, "/Messages.json", msg="too many requests (fake)", code=20429)
            raise classify_twilio_error(exc, self.busy_retry_after)
        if to in self.refuse:
            code = self.refuse[to]
            exc = TwilioRestException(400, "/Messages.json", msg="refused by fake", code=code)
            raise classify_twilio_error(exc)
        with self._lock:
            sid = f"SM{len(self.sent) + 1:032x}"
            self.sent.append(
                {"sid": sid, "to": to, "from": sender, "body": body, "callback": status_callback}
            )
        return SentSms(provider_id=sid, status="queued")

    def send_many(
        self, messages: Sequence[OutgoingSms], /, *, attempt: Attempt[SentSms] = once
    ) -> list[SentSms | ProviderError]:
        """See ``SmsGateway.send_many``."""

        def one(sms: OutgoingSms) -> SentSms:
            return self.send(to=sms.to, sender=sms.sender, body=sms.body, status_callback=sms.status_callback)

        return run_in_turn(messages, one, attempt, "fake sms")

    def close(self) -> None:
        """See ``SmsGateway.close``."""
        self.closed = True

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        with self._lock:
            for item in self.sent:
                if item["to"] == to and item["body"] == body:
                    return item["sid"]
        return None

    def fetch_status(self, provider_id: str) -> tuple[str, int | None]:
        with self._lock:
            known = any(item["sid"] == provider_id for item in self.sent) or provider_id in self.statuses
        if not known:
            exc = TwilioRestException(404, f"/Messages/{provider_id}.json", msg="not found", code=20404)
            raise classify_twilio_error(exc)
        return self.statuses.get(provider_id, ("sent", None))


# --- email ---


@dataclass
class FakeEmail:
    """An in-memory gateway for unit tests: records the messages it built.

    ``refuse`` maps an address to the SMTP code it answers with (4xx transient, 5xx permanent);
    ``busy`` maps an address to how many more tries are answered 451 (transient) before it is sent.
    ``send_many`` keeps the real contract but sends one email after another, in the calling thread;
    ``closed`` tells whether ``close()`` was called.
    """

    sender: str = "herald@example.com"
    refuse: dict[str, int] = field(default_factory=dict)
    sent: list[EmailMessage] = field(default_factory=list)
    busy: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, email: OutgoingEmail) -> SentEmail:
        with self._lock:
            busy = self.busy.get(email.to, 0)
            if busy:
                self.busy[email.to] = busy - 1
        if busy:
            reply = b"try again later (fake)"
            raise classify_smtp_error(smtplib.SMTPRecipientsRefused({email.to: (451, reply)}))
        if email.to in self.refuse:
            code = self.refuse[email.to]
            reply = b"refused by fake"
            raise classify_smtp_error(smtplib.SMTPRecipientsRefused({email.to: (code, reply)}))
        message = build_message(email, self.sender)
        with self._lock:
            self.sent.append(message)
        return SentEmail(message_id=str(message["Message-ID"]))

    def send_many(
        self, emails: Sequence[OutgoingEmail], /, *, attempt: Attempt[SentEmail] = once
    ) -> list[SentEmail | ProviderError]:
        """See ``EmailGateway.send_many``."""
        return run_in_turn(emails, self.send, attempt, "fake email")

    def close(self) -> None:
        """See ``EmailGateway.close``."""
        self.closed = True


# --- gocardless ---


@dataclass
class FakeDirectDebit:
    """An in-memory ``DirectDebit`` for unit tests: keeps idempotency keys like GoCardless does.

    ``inactive_mandates`` are refused (permanent); ``failures`` are raised, in order, by the next
    calls (give it real ``gocardless_pro`` errors to exercise ``classify``).
    """

    inactive_mandates: set[str] = field(default_factory=set)
    failures: list[BaseException] = field(default_factory=list)
    payments: dict[str, PaymentRef] = field(default_factory=dict)
    setups: dict[str, MandateSetup] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _keys: dict[str, str] = field(default_factory=dict)  # payment idempotency key → id
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _fail_maybe(self) -> None:
        if self.failures:
            raise classify(self.failures.pop(0))

    def create_payment(
        self,
        *,
        amount_minor: int,
        currency: str,
        mandate_id: str,
        idempotency_key: str,
        metadata: dict[str, str],
        description: str,
    ) -> PaymentRef:
        """See ``DirectDebit.create_payment``."""
        self.calls.append(("create_payment", {"key": idempotency_key, "amount": amount_minor}))
        self._fail_maybe()
        if idempotency_key in self._keys:
            return replace(self.payments[self._keys[idempotency_key]], existing=True)
        if mandate_id in self.inactive_mandates:
            raise PermanentProviderError("gocardless invalid_state: mandate_is_inactive", status=422)
        ref = PaymentRef(
            f"PM{next(self._ids):012d}", amount_minor, currency, "pending_submission", mandate_id
        )
        self.payments[ref.id] = ref
        self._keys[idempotency_key] = ref.id
        return ref

    def create_mandate_setup(
        self,
        *,
        payer: PayerDetails,
        currency: str,
        redirect_uri: str | None,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> MandateSetup:
        """See ``DirectDebit.create_mandate_setup``."""
        self.calls.append(("create_mandate_setup", {"key": idempotency_key, "currency": currency}))
        self._fail_maybe()
        if idempotency_key in self.setups:
            return self.setups[idempotency_key]
        n = next(self._ids)
        setup = MandateSetup(f"BRQ{n:011d}", f"BRF{n:011d}", f"https://pay.example/flow/BRF{n:011d}")
        self.setups[idempotency_key] = setup
        return setup

    def get_payment(self, payment_id: str) -> PaymentRef:
        """See ``DirectDebit.get_payment``."""
        self._fail_maybe()
        if payment_id not in self.payments:
            raise PermanentProviderError(f"gocardless invalid_api_usage: {payment_id} not found", status=404)
        return self.payments[payment_id]
