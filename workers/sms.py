"""Stage ``sms``: send through the organisation's SMS providers (Twilio by default), exactly once
per notification, a batch at a time.

A batch (``NotificationsRendered``, up to ``HERALD_STAGE_BATCH_SIZE`` notifications) is read in
one query and each notification's next step decided by the pure ``next_step``. The ones to send
are paced (each on its sender's shared timeline), their credit reserved and their attempts
recorded (``pending → sending``) in one transaction, before any call; then they are sent
concurrently (``SmsGateway.send_many``, each with its in-call retries), their answers recorded in
one transaction, and every outcome reported to history in one confirmed message. What must wait
(an attempt in flight elsewhere, a busy sender, a transient failure) comes back alone, in a
message of its own with the delay; a redelivered batch only re-reports what has an answer, and an
attempt cut short is reconciled against Twilio before anything is resent.

Providers and failover (``workers.sms_routing``, docs/failover.md): each notification goes to the
first provider of its organisation's list whose circuit breaker admits it, moving on only after an
unambiguous failure; an attempt cut short is reconciled at the provider it went to, never resent
elsewhere before that provider says it has no such message.

A single-item message (``NotificationRendered``, queued by an older deployment) is a batch of one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from infra import metrics
from infra.adapters.sms import OPTED_OUT, OutgoingSms, SentSms
from infra.bootstrap import Services
from infra.errors import ConfigurationError, PermanentProviderError, TransientProviderError
from infra.store.attempts import Attempt, Outcome, log_attempts
from infra.store.batches import unique
from infra.store.integrations import integration_active
from infra.store.notifications import (
    claim_for_sending_many,
    load_notifications,
    record_provider_ids,
    record_refusals,
    release_claims,
    skip_pending_many,
    stamp_attempts,
)
from infra.store.organisations import (
    load_orgs,
    mark_opted_out,
    refund_credit_many,
    reserve_credit_many,
)
from infra.store.rate_limit import take_slots
from infra.store.routing import set_providers
from schemas.breakers import Transition
from schemas.directory import OrgView
from schemas.messages import NotificationRendered, NotificationsRendered
from schemas.notifications import Status
from schemas.rows import NotificationRow
from workers.breakers import announce
from workers.decode import decode
from workers.rules.delivery import Step
from workers.rules.segments import count_segments
from workers.sending import (
    START_WINDOW_SECONDS,
    BatchOutcome,
    NotStarted,
    about,
    call_provider,
    emit_batch,
    finish_one,
    in_flight,
    settle_transients,
    triage,
    warn_given_up,
)
from workers.sms_routing import call_timeout, plan, record_answers, send_routed

logger = logging.getLogger("herald.sms")
SOURCE = "sms"


def _callback_url(svc: Services, nid: str) -> str | None:
    # Every provider's adapter is given the same URL, ending with the notification id: Twilio
    # calls it back; Vonage's adapter takes the id from it as the message's client-ref and asks
    # for receipts at its own receiver.
    base = svc.settings.public_url
    return f"{base}/callbacks/twilio/{nid}" if base else None


def _in_flight(svc: Services) -> timedelta:
    # Longer than a claimed attempt can live: its start window (the batch's turn on the pool and
    # its rate-limit slot), then one call with its in-call retries; so a live attempt is never
    # mistaken for one cut short by a crash.
    # The slowest provider's timeout: an attempt may have gone to any of them (failover).
    s = svc.settings
    calls = s.send_call_attempts * (call_timeout(s) + s.send_call_max_wait_seconds)
    return in_flight(calls, s.sms_rate_max_wait_seconds)


def send_sms_batch(svc: Services, body: Any) -> None:
    """Decode → each notification's step (pure) → pace, reserve and claim, send the batch, record
    → one report to history, and the notifications that must wait put back with their delay."""
    ids = decode(NotificationsRendered, body).notification_ids
    outcome = BatchOutcome(SOURCE)
    handle(svc, ids, outcome)
    emit_batch(svc, outcome, again=NotificationsRendered, alone=_alone)


def send_sms(svc: Services, body: Any) -> None:
    """A single-item message: the batch of one (``send_sms_batch``), reported in a message of its
    own; an unknown notification is dead-lettered, one that must wait is retried with the delay."""
    nid = decode(NotificationRendered, body).notification_id
    outcome = BatchOutcome(SOURCE)
    handle(svc, [nid], outcome)
    finish_one(svc, outcome)


def _alone(nid: str) -> NotificationRendered:
    return NotificationRendered(notification_id=nid)


def handle(svc: Services, ids: Sequence[str], outcome: BatchOutcome) -> None:
    """Everything a batch does but hand its outcome on: collected in ``outcome``."""
    ids = unique(ids)
    window = _in_flight(svc)
    with svc.reading() as conn:
        rows = load_notifications(conn, ids)
        # Only what may be sent (pending, or a claim that may be cut short) needs the integration.
        open_ = any(r.status in (Status.PENDING, Status.SENDING) for r in rows.values())
        connected = integration_active(conn, "twilio", svc.settings) if open_ else True
    now = datetime.now(UTC)
    to_reconcile: list[NotificationRow] = []
    to_send: list[NotificationRow] = []
    for row, step in triage(ids, rows, now, window, outcome):
        (to_reconcile if step == Step.RECONCILE else to_send).append(row)
    if to_reconcile:
        to_send.extend(_reconcile(svc, to_reconcile, outcome))
    if to_send:
        _send(svc, to_send, connected, outcome)
    _log_batch(len(ids), outcome)


def _reconcile(svc: Services, rows: list[NotificationRow], outcome: BatchOutcome) -> list[NotificationRow]:
    """Attempts cut short: ask Twilio, for each, whether it has the message before resending.
    Returns the rows to send again (Twilio has nothing); the found ones are reported sent."""
    found: list[tuple[str, str]] = []
    absent: list[NotificationRow] = []
    for row in rows:
        assert row.body is not None  # rendered before it was handed to sms
        since = row.attempted_at or datetime.now(UTC) - timedelta(days=1)
        # Asked where the attempt went, and only there: never resent elsewhere before it answers.
        gateway = svc.sms_gateway(_provider(row))
        if gateway is None:
            outcome.hand_on_alone(
                row.id, ConfigurationError(f"sms provider {_provider(row)!r} is not configured")
            )
            continue
        try:
            with about(row.id, row.event_id):
                provider_id = gateway.find_sent(to=row.recipient, body=row.body, since=since)
        except Exception as exc:  # the look-up of this one failed: it is retried alone
            outcome.hand_on_alone(row.id, exc)
            continue
        if provider_id:
            found.append((row.id, provider_id))
        else:
            absent.append(row)
    at = {row.id: _provider(row) for row in rows}
    attempts = [
        Attempt(nid, Outcome.RECONCILED, detail=f"found at the provider as {provider_id}", provider=at[nid])
        for nid, provider_id in found
    ]
    # The cut-short try stays in history as such before the resend.
    attempts += [
        Attempt(
            row.id,
            Outcome.AMBIGUOUS,
            detail=f"cut short; {at[row.id]} has no such message: resending",
            provider=at[row.id],
        )
        for row in absent
    ]
    if attempts:
        with svc.transaction() as conn:
            record_provider_ids(conn, found)
            log_attempts(conn, attempts)
            release_claims(conn, [row.id for row in absent])
    for nid, provider_id in found:
        outcome.report(nid, Status.SENT, provider_id=provider_id)
    return absent


def _provider(row: NotificationRow) -> str:
    """The provider of a notification's latest attempt (before failover existed: Twilio)."""
    return row.provider or "twilio"


@dataclass(frozen=True)
class _Item:
    """One notification of the batch on its way to its provider."""

    row: NotificationRow
    sender: str
    parts: int
    #: When its rate-limit slot comes (``time.monotonic()``), 0 when not paced.
    due: float = 0.0
    #: The same instant on the wall clock, when it is later than the claim (``time.time()``).
    slot_at: float | None = None
    #: Its provider (``workers.sms_routing``), and its sender's rate-limit timeline and rate.
    provider: str = "twilio"
    rate_key: str = ""
    rate: float | None = None


def _sender_rate(svc: Services, sender: str) -> float:
    return svc.settings.sms_sender_rates.get(sender, svc.settings.sms_segments_per_second)


def _send(svc: Services, rows: list[NotificationRow], connected: bool, outcome: BatchOutcome) -> None:
    settings = svc.settings
    too_long: list[tuple[NotificationRow, str]] = []
    items: list[_Item] = []
    for row in rows:
        assert row.body is not None  # rendered before it was handed to sms
        try:
            parts = count_segments(row.body).parts
        except ValueError as exc:  # over 1,600 characters: permanent, recorded, never sent
            too_long.append((row, str(exc)))
            continue
        items.append(_Item(row, str(row.sender or settings.twilio_from), parts))
    if not connected:
        # The operator disconnected Twilio: stop all SMS activity, and say so in history.
        _skip_disconnected(svc, too_long, items, outcome)
        return
    max_wait = settings.sms_rate_max_wait_seconds
    # The window in which this batch's calls may start: measured from before the claim, so no
    # call starts after the attempt could be taken for one cut short (``_in_flight``).
    start_by = time.monotonic() + START_WINDOW_SECONDS + max_wait
    moved: list[Transition] = []
    with svc.transaction() as conn:
        claimed_long = claim_for_sending_many(conn, [row.id for row, _ in too_long])
        record_refusals(conn, [(nid, None) for nid in claimed_long])
        orgs = load_orgs(conn, {i.row.org_id for i in items}, settings.default_region)
        items = _route(conn, svc, items, orgs, outcome, moved)
        items = _take_slots(conn, svc, items, outcome)
        # Rule 7: reserved atomically, once per notification, before anything is sent.
        buying = [i for i in items if orgs[i.row.org_id].buys_credit]
        held = reserve_credit_many(conn, [(i.row.id, i.row.org_id, i.parts) for i in buying])
        short = [i for i, ok in zip(buying, held, strict=True) if not ok]
        short_ids = {i.row.id for i in short}
        # Skipped or claimed: of two workers holding the same notification only one wins it.
        skipped = skip_pending_many(conn, short_ids)
        claimed = claim_for_sending_many(conn, [i.row.id for i in items if i.row.id not in short_ids])
        # A paced attempt begins at its slot: stamped so, as when the claim followed the wait.
        stamp_attempts(
            conn,
            [
                (i.row.id, datetime.fromtimestamp(i.slot_at, UTC))
                for i in items
                if i.slot_at is not None and i.row.id in claimed
            ],
        )
        # Written only when it changes: a deployment with Twilio alone writes nothing more.
        set_providers(
            conn,
            [(i.row.id, i.provider) for i in items if i.row.id in claimed and i.provider != _provider(i.row)],
        )
    announce(moved)
    for row, reason in too_long:
        outcome.report(row.id, Status.FAILED, detail=reason)
    reserved = sum(i.parts for i in buying if i.row.id in claimed and i.row.segments is None)
    if reserved:
        metrics.SMS_CREDIT.labels(operation="reserved").inc(reserved)
    _report_short(short, skipped, orgs, buying, held, outcome)
    # Of two workers holding the same notification, the other one reports it.
    sending = [i for i in items if i.row.id in claimed]
    if sending:
        _call_twilio(svc, sending, start_by, outcome)


def _skip_disconnected(
    svc: Services, too_long: list[tuple[NotificationRow, str]], items: list[_Item], outcome: BatchOutcome
) -> None:
    with svc.transaction() as conn:
        claimed_long = claim_for_sending_many(conn, [row.id for row, _ in too_long])
        record_refusals(conn, [(nid, None) for nid in claimed_long])
        won = skip_pending_many(conn, [i.row.id for i in items])
    for row, reason in too_long:
        outcome.report(row.id, Status.FAILED, detail=reason)
    for i in items:
        if i.row.id in won:
            detail = "sms_not_connected: the twilio integration is disconnected"
            outcome.report(i.row.id, Status.SKIPPED, detail=detail)


def _route(
    conn: Connection,
    svc: Services,
    items: list[_Item],
    orgs: dict[str, OrgView],
    outcome: BatchOutcome,
    moved: list[Transition],
) -> list[_Item]:
    """Each item's provider, sender and rate (``workers.sms_routing.plan``); one whose every
    circuit is open comes back when one admits trial sends. Returns the items that go now."""
    routes, waiting, transitions = plan(conn, svc, [i.row for i in items], orgs)
    moved.extend(transitions)
    for nid, seconds in waiting.items():
        outcome.again(nid, seconds)
    return [
        replace(i, provider=r.provider, sender=r.sender, rate_key=r.rate_key, rate=r.rate)
        for i in items
        if (r := routes.get(i.row.id)) is not None
    ]


def _take_slots(conn: Connection, svc: Services, items: list[_Item], outcome: BatchOutcome) -> list[_Item]:
    """Each message's slot on its sender's shared timeline, in the batch's order (every ``sms``
    process draws from the same one). A sender busy beyond the longest wait takes no slot: those
    come back when it is free rather than hold a thread. Returns the items that go now."""
    max_wait = svc.settings.sms_rate_max_wait_seconds
    by_sender: dict[str, list[_Item]] = {}
    for item in items:
        by_sender.setdefault(item.rate_key or item.sender, []).append(item)
    going: dict[str, _Item] = {}
    for sender in sorted(by_sender):  # senders' rows locked in key order: no deadlock
        mine = by_sender[sender]
        rate = mine[0].rate if mine[0].rate is not None else _sender_rate(svc, mine[0].sender)
        if rate <= 0:
            going.update((i.row.id, i) for i in mine)
            continue
        now_wall, now_mono = time.time(), time.monotonic()
        waits = take_slots(conn, sender, [i.parts / rate for i in mine], now_wall, max_wait)
        for item, wait in zip(mine, waits, strict=True):
            if wait > max_wait:
                outcome.again(item.row.id, wait)
            else:
                wait = max(0.0, wait)
                at = now_wall + wait if wait > 0 else None
                going[item.row.id] = replace(item, due=now_mono + wait, slot_at=at)
    return [going[i.row.id] for i in items if i.row.id in going]


def _report_short(
    short: list[_Item],
    skipped: set[str],
    orgs: dict[str, OrgView],
    buying: list[_Item],
    held: list[bool],
    outcome: BatchOutcome,
) -> None:
    """Report the notifications skipped for want of credit, each with the balance it met (the
    organisation's, less what the batch's earlier notifications reserved)."""
    if not short:
        return
    balance = {org_id: org.credit_balance for org_id, org in orgs.items()}
    met: dict[str, int] = {}
    for item, ok in zip(buying, held, strict=True):
        org_id = item.row.org_id
        if ok and item.row.segments is None:
            balance[org_id] -= item.parts
        elif not ok:
            met[item.row.id] = balance[org_id]
    for item in short:
        if item.row.id in skipped:
            detail = f"insufficient_credit: needs {item.parts}, balance {met[item.row.id]}"
            outcome.report(item.row.id, Status.SKIPPED, detail=detail)


def _call_twilio(svc: Services, items: list[_Item], start_by: float, outcome: BatchOutcome) -> None:
    """Send the claimed notifications concurrently, then record every answer in one transaction."""
    began: dict[int, datetime] = {}

    def attempt(index: int, call: Callable[[], SentSms]) -> SentSms:
        # In a pool thread: this item's slot, its start window, its in-call retries.
        item = items[index]
        with about(item.row.id, item.row.event_id):
            wait = item.due - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the rate limit itself: this message's slot on its sender's timeline
            if time.monotonic() > start_by:
                raise NotStarted("not started within the batch's window; not sent")
            sent, began[index] = call_provider(svc, item.row.id, call, source=SOURCE, provider=item.provider)
            return sent

    messages = [
        OutgoingSms(
            to=i.row.recipient,
            sender=i.sender,
            body=str(i.row.body),
            status_callback=_callback_url(svc, i.row.id),
        )
        for i in items
    ]
    results = send_routed(svc, [i.provider for i in items], messages, attempt)
    accepted: list[tuple[_Item, SentSms, datetime]] = []
    refused: list[tuple[_Item, PermanentProviderError]] = []
    failing: list[tuple[str, TransientProviderError]] = []
    for index, (item, result) in enumerate(zip(items, results, strict=True)):
        if isinstance(result, SentSms):
            accepted.append((item, result, began[index]))
        elif isinstance(result, PermanentProviderError):
            refused.append((item, result))
        elif isinstance(result, TransientProviderError):
            failing.append((item.row.id, result))
        else:  # a ProviderError of neither kind: not the adapter's contract, so not sent for sure
            failing.append((item.row.id, TransientProviderError(str(result), accepted_unknown=True)))
    by_id = {i.row.id: i for i in items}
    providers = {i.row.id: i.provider for i in items}
    answers = [
        (i.provider, r if isinstance(r, BaseException) else None) for i, r in zip(items, results, strict=True)
    ]
    with svc.transaction() as conn:
        moved = record_answers(conn, svc, answers)  # breakers first: the lock order of the claims
        attempts, given_up = settle_transients(
            conn, svc, failing, outcome, in_flight=_in_flight(svc), providers=providers
        )
        record_provider_ids(conn, [(i.row.id, sent.provider_id) for i, sent, _ in accepted])
        record_refusals(conn, [(i.row.id, exc.code) for i, exc in refused])
        # Stamped when the try began, so it sorts before any status the provider reports back.
        attempts += [
            Attempt(i.row.id, Outcome.ACCEPTED, detail=s.provider_id, at=at, provider=i.provider)
            for i, s, at in accepted
        ]
        attempts += [
            Attempt(
                i.row.id,
                Outcome.REFUSED,
                http_status=exc.status,
                error_code=exc.code,
                detail=str(exc),
                provider=i.provider,
            )
            for i, exc in refused
        ]
        log_attempts(conn, attempts)
        back = [(i.row.id, i.row.org_id) for i, _ in refused]
        back += [(nid, by_id[nid].row.org_id) for nid, _ in given_up]
        refunded = sum(refund_credit_many(conn, back)) if back else 0
        for i, exc in refused:
            if exc.code == OPTED_OUT:
                mark_opted_out(conn, i.row.org_id, i.row.contact_id, notification_id=i.row.id)
    announce(moved)
    if refunded:
        metrics.SMS_CREDIT.labels(operation="refunded").inc(refunded)
    segments = sum(i.parts for i, _, _ in accepted)
    if segments:
        metrics.SMS_SEGMENTS.inc(segments)
    outcome.accepted += len(accepted)
    for i, sent, _ in accepted:
        outcome.report(i.row.id, Status.SENT, provider_id=sent.provider_id)
    for i, exc in refused:
        metrics.provider_error(i.provider, exc.code)
        with about(i.row.id, i.row.event_id):
            logger.warning("sms refused", extra={"notification_id": i.row.id, "code": exc.code})
        outcome.report(i.row.id, Status.FAILED, code=exc.code)
    warn_given_up(given_up, {i.row.id: i.row.event_id for i in items})


def _log_batch(size: int, outcome: BatchOutcome) -> None:
    """One line per batch: what its notifications came to."""
    counts = {
        "batch": size,
        "accepted": outcome.accepted,
        "failed": outcome.count(Status.FAILED),
        "skipped": outcome.count(Status.SKIPPED),
        "later": len(outcome.later),
        "alone": len(outcome.alone),
    }
    logger.info("sms accepted" if counts["accepted"] else "sms batch handled", extra=counts)
