"""The ``email`` stage's SMTP relays (``HERALD_SMTP_HOST``, then ``HERALD_SMTP_RELAYS``): which one
each email goes to, by the same breakers and rules as SMS providers (``workers.rules.failover``),
and what the answers tell the breakers.

One difference from SMS: SMTP cannot be asked whether it took a message, so an email whose 250
may have been lost is resent (``workers.email``), always with the same ``Message-ID`` (derived from
the notification id), and so it may be resent through another relay: receiving servers and mail
clients de-duplicate on the Message-ID whichever relay delivered it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Connection

from infra.adapters.batch import Attempt
from infra.adapters.email import OutgoingEmail, SentEmail
from infra.bootstrap import PRIMARY_RELAY, Services
from infra.errors import ProviderError, TransientProviderError
from schemas.breakers import Transition
from schemas.rows import NotificationRow
from workers.breakers import policy_of, record_signals, reopening_in, route
from workers.rules.failover import signal_of
from workers.sending import NotStarted
from workers.sms_routing import MIN_OPEN_WAIT_SECONDS


def relay_of(row: NotificationRow) -> str:
    """The relay of a notification's latest attempt (written only when not the first)."""
    return row.provider or PRIMARY_RELAY


def plan(
    conn: Connection, svc: Services, rows: Sequence[NotificationRow]
) -> tuple[dict[str, str], dict[str, float], list[Transition]]:
    """Each email's relay: with one relay, that one; with several, the first whose breaker admits
    it, starting after the relay of its last try when it was tried before. Returns the relays by
    id, the emails whose every relay is open with the seconds until one admits trials, and the
    breakers' state changes."""
    names = svc.email_relays()
    if len(names) == 1:
        return dict.fromkeys((r.id for r in rows), PRIMARY_RELAY), {}, []
    policy, now = policy_of(svc.settings), time.time()
    requests = [(names, relay_of(r) if r.attempts > 0 else None) for r in rows]
    chosen, moved = route(conn, policy, now, requests)
    relays = {r.id: name for r, name in zip(rows, chosen, strict=True) if name is not None}
    waiting = {
        r.id: max(MIN_OPEN_WAIT_SECONDS, reopening_in(conn, policy, now, names))
        for r, name in zip(rows, chosen, strict=True)
        if name is None
    }
    return relays, waiting, moved


def send_relayed(
    svc: Services,
    relays: Sequence[str],
    emails: Sequence[OutgoingEmail],
    attempt: Callable[[int, Callable[[], SentEmail]], SentEmail],
) -> list[SentEmail | ProviderError]:
    """Send a batch whose emails go to several relays, each relay's share at the same time;
    ``attempt`` sees each email's index in the whole batch. One result per email, in order."""
    results: list[SentEmail | ProviderError | None] = [None] * len(emails)
    by_relay: dict[str, list[int]] = {}
    for index, name in enumerate(relays):
        by_relay.setdefault(name, []).append(index)

    def share(name: str, indexes: list[int]) -> None:
        gateway = svc.email_relay(name)
        if gateway is None:  # a relay removed from the settings meanwhile: not sent
            for index in indexes:
                results[index] = TransientProviderError(f"smtp relay {name!r} is not configured")
            return

        def shifted(local: int, call: Callable[[], SentEmail]) -> SentEmail:
            return attempt(indexes[local], call)

        hook: Attempt[SentEmail] = shifted
        for index, answer in zip(
            indexes, gateway.send_many([emails[i] for i in indexes], attempt=hook), strict=True
        ):
            results[index] = answer

    if len(by_relay) == 1:
        ((name, indexes),) = by_relay.items()
        share(name, indexes)
    else:
        with ThreadPoolExecutor(len(by_relay), thread_name_prefix="herald-smtp-route") as pool:
            for done in [pool.submit(share, name, indexes) for name, indexes in by_relay.items()]:
                done.result()
    missing = TransientProviderError("no answer", accepted_unknown=True)
    return [r if r is not None else missing for r in results]


def record_answers(
    conn: Connection, svc: Services, answers: Sequence[tuple[str, BaseException | None]]
) -> list[Transition]:
    """What each email's answer ``(relay, error or None)`` tells its relay's breaker."""
    if len(svc.email_relays()) == 1:
        return []  # one relay: nothing to fail over to, no state to keep
    signals = [(name, signal_of(exc)) for name, exc in answers if not isinstance(exc, NotStarted)]
    return record_signals(conn, policy_of(svc.settings), time.time(), signals)
