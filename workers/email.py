"""Stage ``email``: send through SMTP, once per notification as far as SMTP allows, a batch at a time.

A batch (``EmailsRendered``) is read in one query and each notification's next step decided by
the pure ``next_step``. The attempts to make are recorded (``pending → sending``) in one
transaction before the server is called, the emails sent concurrently over kept-alive SMTP
connections (``EmailGateway.send_many``, each with its in-call retries), the Message-IDs recorded
right after in one transaction, and every outcome reported to history in one confirmed message.
So a redelivered batch whose attempts have a Message-ID only reports them again. A single-item
message (``EmailRendered``) is a batch of one.

An ambiguous attempt (the worker crashed, or the connection dropped or timed out after DATA went
out) cannot be reconciled the way SMS is: SMTP has no way to ask a server whether it took a
message. Decision: resend it, with the same Message-ID. The Message-ID is derived from the
notification id, so it is the same on every attempt, and receiving servers and mail clients
de-duplicate on it; the worst case is a second copy in a mailbox that does not, never a
notification silently lost. Each resend is in the attempt log.

Several relays (``HERALD_SMTP_RELAYS``, ``workers.email_relays``): each email goes to the first
relay whose circuit breaker admits it, starting after the relay of its last try; a resend keeps
its Message-ID whichever relay it goes through.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.adapters.email import OutgoingEmail, RecipientRefused, SentEmail, UnsendableEmail
from infra.bootstrap import Services
from infra.errors import MalformedMessage, PermanentProviderError, TransientProviderError
from infra.masking import mask_email
from infra.store.attempts import Attempt, Outcome, log_attempts
from infra.store.batches import unique
from infra.store.notifications import (
    claim_for_sending_many,
    load_notifications,
    record_provider_ids,
    record_refusals,
    release_claims,
)
from infra.store.routing import set_providers
from infra.store.suppression import suppress_address
from schemas.messages import EmailRendered, EmailsRendered
from schemas.notifications import Status
from schemas.rows import NotificationRow
from workers.breakers import announce
from workers.decode import decode
from workers.email_links import EmailLinks, with_footer
from workers.email_relays import plan, record_answers, relay_of, send_relayed
from workers.rules.delivery import Step
from workers.sending import (
    START_WINDOW_SECONDS,
    BatchOutcome,
    NotStarted,
    about,
    call_provider,
    count_provider_error,
    emit_batch,
    finish_one,
    in_flight,
    settle_transients,
    triage,
    warn_given_up,
)

logger = logging.getLogger("herald.email")


SOURCE = "email"

#: What the attempt log says of a try cut short, before the resend.
CUT_SHORT = (
    "cut short (worker stopped before the server's answer was recorded); resending with the same Message-ID"
)


def _in_flight(svc: Services) -> timedelta:
    # Longer than a claimed attempt can live (see workers.sms._in_flight).
    s = svc.settings
    calls = s.send_call_attempts * (s.smtp_timeout_seconds * 2 + s.send_call_max_wait_seconds)
    return in_flight(calls)


def send_email_batch(svc: Services, body: Any) -> None:
    """Decode → each notification's step (pure) → claim, send the batch over SMTP, record → one
    report to history, and the notifications that must wait put back with their delay."""
    ids = decode(EmailsRendered, body).notification_ids
    outcome = BatchOutcome(SOURCE)
    handle(svc, ids, outcome)
    emit_batch(svc, outcome, again=EmailsRendered, alone=_alone)


def send_email(svc: Services, body: Any) -> None:
    """A single-item message: the batch of one (``send_email_batch``), reported in a message of its
    own; an unknown or unrendered notification is dead-lettered, one that must wait is retried."""
    nid = decode(EmailRendered, body).notification_id
    outcome = BatchOutcome(SOURCE)
    handle(svc, [nid], outcome)
    finish_one(svc, outcome)


def _outgoing(row: NotificationRow, links: EmailLinks) -> OutgoingEmail:
    """The email as rendered, with the preference link and the unsubscribe headers."""
    text, html = str(row.body), str(row.html)
    headers: tuple[tuple[str, str], ...] = ()
    made = links.for_row(row)
    if made is not None:
        text, html = with_footer(text, html, made.page_url, row.locale)
        headers = made.headers
    return OutgoingEmail(row.id, row.recipient, str(row.subject), text, html, headers)


def _alone(nid: str) -> EmailRendered:
    return EmailRendered(notification_id=nid)


def handle(svc: Services, ids: Sequence[str], outcome: BatchOutcome) -> None:
    """Everything a batch does but hand its outcome on: collected in ``outcome``."""
    ids = unique(ids)
    window = _in_flight(svc)
    with svc.reading() as conn:
        rows = load_notifications(conn, ids)
    now = datetime.now(UTC)
    cut_short: list[NotificationRow] = []
    to_send: list[NotificationRow] = []
    for row, step in triage(ids, rows, now, window, outcome):
        if row.body is None or row.subject is None or row.html is None:
            outcome.hand_on_alone(row.id, MalformedMessage(f"{row.id}: not rendered as an email"))
            continue
        if step == Step.RECONCILE:
            # SMTP cannot be asked; resend with the same Message-ID (see the module docstring).
            cut_short.append(row)
        to_send.append(row)
    if to_send:
        _send(svc, to_send, cut_short, outcome)
    logger.info(
        "email accepted" if outcome.accepted else "email batch handled",
        extra={
            "batch": len(ids),
            "accepted": outcome.accepted,
            "failed": outcome.count(Status.FAILED),
            "later": len(outcome.later),
            "alone": len(outcome.alone),
        },
    )


def _send(
    svc: Services, rows: list[NotificationRow], cut_short: list[NotificationRow], outcome: BatchOutcome
) -> None:
    start_by = time.monotonic() + START_WINDOW_SECONDS
    with svc.transaction() as conn:
        # The tries that were cut short go in the attempt log: they may have reached the mailbox.
        log_attempts(
            conn,
            [
                Attempt(r.id, Outcome.AMBIGUOUS, detail=CUT_SHORT, at=r.attempted_at, provider=relay_of(r))
                for r in cut_short
            ],
        )
        release_claims(conn, [r.id for r in cut_short])
        # Each email's relay (workers.email_relays); one whose every relay is open comes back.
        relays, waiting, moved = plan(conn, svc, rows)
        for nid, seconds in waiting.items():
            outcome.again(nid, seconds)
        claimed = claim_for_sending_many(conn, [r.id for r in rows if r.id in relays])
        set_providers(
            conn, [(r.id, relays[r.id]) for r in rows if r.id in claimed and relays[r.id] != relay_of(r)]
        )
    announce(moved)
    for row in cut_short:
        with about(row.id, row.event_id):
            logger.warning("email attempt was cut short; resending", extra={"notification_id": row.id})
    # Of two workers holding the same notification, the other one reports it.
    sending = [r for r in rows if r.id in claimed]
    if not sending:
        return
    began: dict[int, datetime] = {}

    def attempt(index: int, call: Callable[[], SentEmail]) -> SentEmail:
        # In a pool thread: this item's start window, its in-call retries.
        row = sending[index]
        with about(row.id, row.event_id):
            if time.monotonic() > start_by:
                raise NotStarted("not started within the batch's window; not sent")
            sent, began[index] = call_provider(svc, row.id, call, source=SOURCE, provider=relays[row.id])
            return sent

    links = EmailLinks(svc.settings)
    emails = [_outgoing(r, links) for r in sending]
    results = send_relayed(svc, [relays[r.id] for r in sending], emails, attempt)
    accepted: list[tuple[NotificationRow, SentEmail, datetime]] = []
    refused: list[tuple[NotificationRow, PermanentProviderError]] = []
    failing: list[tuple[str, TransientProviderError]] = []
    for index, (row, result) in enumerate(zip(sending, results, strict=True)):
        if isinstance(result, SentEmail):
            accepted.append((row, result, began[index]))
        elif isinstance(result, PermanentProviderError):
            refused.append((row, result))
        elif isinstance(result, TransientProviderError):
            failing.append((row.id, result))
        else:  # a ProviderError of neither kind: not the adapter's contract, so not sent for sure
            failing.append((row.id, TransientProviderError(str(result), accepted_unknown=True)))
    answers = [
        (relays[r.id], a if isinstance(a, BaseException) else None)
        for r, a in zip(sending, results, strict=True)
    ]
    with svc.transaction() as conn:
        moved = record_answers(conn, svc, answers)  # breakers first: the lock order of the claims
        attempts, given_up = settle_transients(
            conn,
            svc,
            failing,
            outcome,
            in_flight=_in_flight(svc),
            providers={r.id: relays[r.id] for r in sending},
        )
        record_provider_ids(conn, [(r.id, sent.message_id) for r, sent, _ in accepted])
        record_refusals(conn, [(r.id, exc.code) for r, exc in refused])
        for r, exc in refused:
            if isinstance(exc, RecipientRefused):  # a hard bounce: no more email to the address
                suppress_address(conn, r.org_id, r.recipient, str(exc), actor=f"smtp:{r.id}")
        attempts += [Attempt(r.id, Outcome.ACCEPTED, at=at, provider=relays[r.id]) for r, _, at in accepted]
        attempts += [
            Attempt(r.id, Outcome.REFUSED, error_code=exc.code, detail=str(exc), provider=relays[r.id])
            for r, exc in refused
        ]
        log_attempts(conn, attempts)
    announce(moved)
    outcome.accepted += len(accepted)
    for row, sent, _ in accepted:
        outcome.report(row.id, Status.SENT, provider_id=sent.message_id)
    for row, exc in refused:
        # A server's 5xx, or a message that cannot be built at all (a line break in a header):
        # the same on every try, so failed for good with the reason, never retried.
        if not isinstance(exc, UnsendableEmail):
            count_provider_error(SOURCE, exc)
        with about(row.id, row.event_id):
            logger.warning(
                "email refused",
                extra={"notification_id": row.id, "to": mask_email(row.recipient), "code": exc.code},
            )
        outcome.report(row.id, Status.FAILED, code=exc.code, detail=str(exc))
    by_id = {r.id: r for r in sending}
    for nid, failure in failing:
        if not isinstance(failure, NotStarted):
            with about(nid, by_id[nid].event_id):
                logger.warning(
                    "email not sent yet",
                    extra={
                        "notification_id": nid,
                        "to": mask_email(by_id[nid].recipient),
                        "code": failure.code,
                    },
                )
    warn_given_up(given_up, {r.id: r.event_id for r in sending})
