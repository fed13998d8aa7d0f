"""The ``sms`` stage's providers: which one each notification of a batch goes to (the
organisation's ordered list, each provider's breaker, the failover rules), with which sender and
rate limit; sending a batch through several providers; what the answers tell the breakers.

Kept apart from ``workers.sms`` (the batch and its exactly-once bookkeeping): that module asks
here for routes, and hands the answers back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from infra import metrics
from infra.adapters.batch import Attempt
from infra.adapters.sms import OutgoingSms, SentSms
from infra.bootstrap import SMS_PROVIDERS, Services
from infra.errors import ProviderError, TransientProviderError
from infra.settings import Settings
from schemas.breakers import Transition
from schemas.directory import OrgView
from schemas.providers import SmsProvider
from schemas.rows import NotificationRow
from workers.breakers import policy_of, record_signals, reopening_in, route
from workers.rules.failover import DEFAULT_PROVIDERS, rate_key, sender_for, signal_of
from workers.sending import NotStarted

#: The shortest wait of a notification whose every circuit is open.
MIN_OPEN_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class Route:
    """Where one SMS goes: the provider, its sender, and the sender's rate-limit timeline."""

    provider: str
    sender: str
    #: The key of its sender's shared timeline (``send_rate``) and its rate (segments/s).
    rate_key: str
    rate: float


def _listed(svc: Services, org: OrgView) -> list[SmsProvider]:
    """The organisation's providers this deployment has (configured); Twilio alone by default."""
    if not org.sms_providers:
        return [SmsProvider(DEFAULT_PROVIDERS[0])]
    have = [p for p in org.sms_providers if svc.sms_gateway(p.name) is not None]
    return have or [SmsProvider(DEFAULT_PROVIDERS[0])]


def _route_of(svc: Services, row: NotificationRow, provider: SmsProvider) -> Route:
    settings = svc.settings
    default_from = getattr(settings, f"{provider.name}_from", None)
    sender = sender_for(provider.name, provider.sender, row.sender, default_from)
    rate = provider.rate
    if rate is None:
        rate = settings.sms_sender_rates.get(sender, settings.sms_segments_per_second)
    return Route(provider.name, sender, rate_key(provider.name, sender), rate)


def call_timeout(settings: Settings) -> float:
    """The longest one call to any SMS provider this deployment may use can take: Twilio's
    ``twilio_timeout_seconds``, and each other configured provider's ``<name>_timeout_seconds``
    (configured: its ``<name>_api_key`` is set), the longest of them."""
    timeouts = [settings.twilio_timeout_seconds]
    for name in SMS_PROVIDERS:
        if name != DEFAULT_PROVIDERS[0] and getattr(settings, f"{name}_api_key", None):
            timeout = getattr(settings, f"{name}_timeout_seconds", None)
            if isinstance(timeout, int | float):
                timeouts.append(float(timeout))
    return max(timeouts)


def failed_at(row: NotificationRow) -> str | None:
    """The provider of a notification's last attempt when it comes back to be sent: that attempt
    ended certainly unsent (released after an unambiguous failure, or the provider said it has no
    such message), so the next one starts from the provider after it. A notification claimed
    before with no provider recorded went to Twilio (the provider is written only when it is not)."""
    if row.provider_id is not None or row.attempts == 0:
        return None
    return row.provider or DEFAULT_PROVIDERS[0]


def plan(
    conn: Connection, svc: Services, rows: Sequence[NotificationRow], orgs: dict[str, OrgView]
) -> tuple[dict[str, Route], dict[str, float], list[Transition]]:
    """Each notification's route, in the caller's transaction. An organisation with one provider
    sends there whatever its breaker says (the retry policy decides, as before failover); one with
    several goes to the first whose breaker admits it, starting after the one that last failed
    it. Returns the routes by id, the ones whose every circuit is open with the seconds until one
    admits trials, and the breakers' state changes."""
    routes: dict[str, Route] = {}
    listed = {org_id: _listed(svc, org) for org_id, org in orgs.items()}
    choosing = [row for row in rows if len(listed[row.org_id]) > 1]
    for row in rows:
        if len(listed[row.org_id]) == 1:
            routes[row.id] = _route_of(svc, row, listed[row.org_id][0])
    if not choosing:
        return routes, {}, []
    policy, now = policy_of(svc.settings), time.time()
    requests = [([p.name for p in listed[row.org_id]], failed_at(row)) for row in choosing]
    chosen, moved = route(conn, policy, now, requests)
    waiting: dict[str, float] = {}
    for row, name, (names, _) in zip(choosing, chosen, requests, strict=True):
        if name is None:
            wait = reopening_in(conn, policy, now, names)
            waiting[row.id] = max(MIN_OPEN_WAIT_SECONDS, wait)
            continue
        routes[row.id] = _route_of(svc, row, next(p for p in listed[row.org_id] if p.name == name))
        if name != names[0]:
            metrics.SMS_PROVIDER_SENDS.labels(provider=name, outcome="failover").inc()
    return routes, waiting, moved


def send_routed(
    svc: Services,
    providers: Sequence[str],
    messages: Sequence[OutgoingSms],
    attempt: Callable[[int, Callable[[], SentSms]], SentSms],
) -> list[SentSms | ProviderError]:
    """Send a batch whose messages go to several providers: each provider's share through its
    gateway's ``send_many``, the shares at the same time (one provider slow or failing does not
    hold the other's messages past their start window); ``attempt`` sees each message's index in
    the whole batch. One result per message, in order."""
    results: list[SentSms | ProviderError | None] = [None] * len(messages)
    by_provider: dict[str, list[int]] = {}
    for index, name in enumerate(providers):
        by_provider.setdefault(name, []).append(index)

    def share(name: str, indexes: list[int]) -> None:
        gateway = svc.sms_gateway(name)
        if gateway is None:  # routed when it was configured: certainly not sent now
            for index in indexes:
                results[index] = TransientProviderError(f"sms provider {name!r} is not configured")
            return

        def shifted(local: int, call: Callable[[], SentSms]) -> SentSms:
            return attempt(indexes[local], call)

        hook: Attempt[SentSms] = shifted
        answers = gateway.send_many([messages[i] for i in indexes], attempt=hook)
        for index, answer in zip(indexes, answers, strict=True):
            results[index] = answer

    if len(by_provider) == 1:
        ((name, indexes),) = by_provider.items()
        share(name, indexes)
    else:
        with ThreadPoolExecutor(len(by_provider), thread_name_prefix="herald-sms-route") as pool:
            for done in [pool.submit(share, name, indexes) for name, indexes in by_provider.items()]:
                done.result()
    # Every share answers for each of its messages; were one missing, it may have been sent.
    return [
        r if r is not None else TransientProviderError("no answer", accepted_unknown=True) for r in results
    ]


def record_answers(
    conn: Connection, svc: Services, answers: Sequence[tuple[str, BaseException | None]]
) -> list[Transition]:
    """What each send's answer ``(provider, error or None)`` tells its provider's breaker, and the
    per-provider counts; in the caller's transaction (the one recording the answers)."""
    answers = [(name, exc) for name, exc in answers if not isinstance(exc, NotStarted)]  # never called
    for name, exc in answers:
        outcome = (
            "accepted" if exc is None else "failed" if isinstance(exc, TransientProviderError) else "refused"
        )
        metrics.SMS_PROVIDER_SENDS.labels(provider=name, outcome=outcome).inc()
    signals = [(name, signal_of(exc)) for name, exc in answers]
    return record_signals(conn, policy_of(svc.settings), time.time(), signals)
