"""The ``webhooks`` process: fans the status outbox out to webhook deliveries, delivers them
(signed, in order per notification, retried with backoff, endpoints paused past a threshold) and
publishes every event to the ``PREFIX.notifications`` topic exchange with publisher confirms.

A crash between a delivery's HTTP answer and its record re-sends it with the same ``webhook-id``
(at least once, as the Standard Webhooks spec allows); a crash between a publish and its mark
re-publishes with the same ``message_id``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from infra import metrics
from infra.bootstrap import Services
from infra.errors import PublishError
from infra.store import webhooks as store
from infra.store.webhooks import Attempt, Due
from producers.confirming import ConfirmingChannel
from producers.webhooks.sender import encode, post
from workers.rules.webhooks import Pending, RetryPolicy, gives_up, next_attempt_at, pauses, sendable

log = logging.getLogger("herald.webhooks")

#: Groups of ``webhook_concurrency`` deliveries sent to one endpoint per round.
CHUNKS = 4
#: Seconds between two retention passes; outbox rows one transaction of a pass deletes, and the
#: most transactions one pass runs (a backlog goes over several passes, never in one long one).
PRUNE_EVERY, PRUNE_BATCH, PRUNE_BATCHES = 600.0, 1000, 20


def policy_of(services: Services) -> RetryPolicy:
    """The retry policy from the settings."""
    s = services.settings
    return RetryPolicy(
        base_seconds=s.webhook_retry_base_seconds,
        cap_seconds=s.webhook_retry_max_seconds,
        window=timedelta(hours=s.webhook_retry_window_hours),
        pause_after=s.webhook_pause_after_failures,
    )


def exchange_name(prefix: str) -> str:
    """The status exchange: ``PREFIX.notifications``."""
    return f"{prefix}.notifications"


@dataclass
class Counts:
    """What one round did (for logs and ``--once``)."""

    fanned_out: int = 0
    delivered: int = 0
    failed: int = 0
    published: int = 0
    paused: list[str] = field(default_factory=list)
    pruned: int = 0

    @property
    def busy(self) -> bool:
        return bool(self.fanned_out or self.delivered or self.failed or self.published)

    def count(self) -> None:
        """Add this round to ``herald_webhooks_total``."""
        done = {
            "fanned_out": self.fanned_out,
            "delivered": self.delivered,
            "failed": self.failed,
            "published": self.published,
            "paused": len(self.paused),
            "pruned": self.pruned,
        }
        for outcome, n in done.items():
            if n:
                metrics.WEBHOOKS.labels(outcome=outcome).inc(n)


class WebhookRunner:
    """One ``webhooks`` process's work, round by round."""

    def __init__(
        self, services: Services, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.policy = policy_of(services)
        self.now = now
        self.owner = f"{socket.gethostname()[:40]}:{os.getpid()}"
        self.session = requests.Session()
        self._pool = ThreadPoolExecutor(self.settings.webhook_concurrency, thread_name_prefix="webhook")
        # Held across rounds and renewed by each; it outlives a round (CHUNKS groups, each at most one
        # timeout long), and a process killed without releasing it holds it no longer than this.
        self.lease = timedelta(seconds=max(30.0, (CHUNKS + 2) * self.settings.webhook_timeout_seconds))
        self._channel: ConfirmingChannel | None = None
        self._next_prune = 0.0  # the first round prunes; then every PRUNE_EVERY seconds
        if self.settings.status_exchange:
            self._channel = ConfirmingChannel(
                self.settings.amqp_urls,
                declare=[],
                timeout=self.settings.publish_timeout_seconds,
                exchange=exchange_name(self.settings.queue_prefix),
            )

    def close(self) -> None:
        """Release the endpoints' leases (another process takes them at once), the HTTP pool, the
        threads and the broker connection."""
        self._pool.shutdown(wait=True)
        try:
            with self.services.transaction() as conn:
                store.release_leases(conn, self.owner)
        except Exception:  # the store away: the leases run out on their own
            log.warning("webhooks: leases not released", exc_info=True)
        self.session.close()
        if self._channel is not None:
            self._channel.close()

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set; waits ``webhook_poll_seconds`` after an idle round."""
        while not stop.is_set():
            try:
                counts = self.round()
            except Exception:  # the store or broker away: logged, tried again next round
                log.exception("webhooks round failed")
                stop.wait(self.settings.webhook_poll_seconds * 4)
                continue
            counts.count()
            if not counts.busy:
                stop.wait(self.settings.webhook_poll_seconds)

    def round(self) -> Counts:
        """Fan out, publish, deliver: one pass."""
        counts = Counts()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_EVERY
            counts.pruned = self.prune()
        with self.services.transaction() as conn:
            counts.fanned_out = store.fan_out(conn, self.now())
        counts.published = self.publish()
        with self.services.transaction() as conn:
            endpoints = store.lease_endpoints(conn, self.owner, self.now(), self.lease)
        for endpoint in endpoints:
            self.deliver(endpoint, counts)
        return counts

    def prune(self) -> int:
        """Delete the outbox rows past ``webhook_retention_days`` that are done with, with their
        deliveries and attempts, ``PRUNE_BATCH`` a transaction; returns how many rows went."""
        before = self.now() - timedelta(days=self.settings.webhook_retention_days)
        pruned = 0
        for _ in range(PRUNE_BATCHES):
            with self.services.transaction() as conn:
                went = store.prune(conn, before, published=self.settings.status_exchange, limit=PRUNE_BATCH)
            pruned += went
            if went < PRUNE_BATCH:
                break
        if pruned:
            log.info("webhooks: pruned status events past their retention", extra={"pruned": pruned})
        return pruned

    # -- the status exchange ---------------------------------------------------------------------
    def publish(self, limit: int = 500) -> int:
        """Publish the oldest unpublished outbox rows in order, mark them once confirmed."""
        if self._channel is None:
            return 0
        try:
            if not self._channel.is_open:  # declares the exchange, so upstreams can bind before any event
                self._channel.open()
        except PublishError as exc:
            log.warning("status exchange: broker unavailable, retried next round: %s", exc)
            return 0
        with self.services.reading() as conn:
            rows = store.outbox_to_publish(conn, limit)
        if not rows:
            return 0
        messages = [(r.msg_id, encode(r.payload)) for r in rows]
        try:
            self._channel.publish(
                "", messages, self.settings.publish_window, routing_keys=[r.type for r in rows]
            )
        except PublishError as exc:
            log.warning("status exchange: publish failed, retried next round: %s", exc)
            return 0
        with self.services.transaction() as conn:
            store.mark_published(conn, [r.id for r in rows], self.now())
        return len(rows)

    # -- webhooks --------------------------------------------------------------------------------
    def deliver(self, endpoint: Any, counts: Counts) -> None:
        """Send what may go now to one endpoint, in order per subject, recording every attempt.

        At most ``webhook_concurrency`` requests are in flight, each recorded before the next group
        goes: a crash re-sends at most that many (same ``webhook-id``). A round takes at most
        ``CHUNKS`` groups, so it ends well within the endpoint's lease."""
        now = self.now()
        size = self.settings.webhook_concurrency
        with self.services.reading() as conn:
            pending = store.pending_of(conn, endpoint["endpoint_id"], size * CHUNKS * 5)
            ids = sendable([Pending(i, subject, at <= now) for i, subject, at in pending])[: size * CHUNKS]
            due = store.load_due(conn, ids)
        secrets = store.signing_secrets(endpoint, now)
        timeout = self.settings.webhook_timeout_seconds
        for start in range(0, len(due), size):
            group = due[start : start + size]
            futures = [
                self._pool.submit(post, self.session, endpoint["url"], d.msg_id, d.payload, secrets, timeout)
                for d in group
            ]
            paused = False
            for d, future in zip(group, futures, strict=True):
                # Every attempt made is recorded, also those in flight when the endpoint was paused.
                paused = self._record(endpoint["endpoint_id"], d, future.result(), counts) or paused
            if paused:
                return

    def _record(self, endpoint_id: str, due: Due, attempt: Attempt, counts: Counts) -> bool:
        """Record one attempt; whether the endpoint is now paused."""
        now = self.now()
        if attempt.ok:
            status, next_at = store.DELIVERED, now
            counts.delivered += 1
        elif gives_up(due.first_attempt_at, now, self.policy):
            status, next_at = store.GAVE_UP, now
            counts.failed += 1
        else:
            status, next_at = (
                store.PENDING,
                next_attempt_at(due.attempts + 1, now, attempt.retry_after, self.policy),
            )
            counts.failed += 1
        with self.services.transaction() as conn:
            store.record_attempt(conn, endpoint_id, due, attempt, status, next_at, now)
            failures = store.count_failure(conn, endpoint_id, attempt.ok)
            if pauses(failures, self.policy):
                said = f"HTTP {attempt.status_code}" if attempt.status_code is not None else attempt.error
                reason = f"paused after {failures} failed attempts in a row; last: {said}"
                store.pause(conn, endpoint_id, reason, now)
                log.warning("webhook endpoint paused", extra={"endpoint_id": endpoint_id, "reason": reason})
                counts.paused.append(endpoint_id)
                return True
        if not attempt.ok:
            log.info(
                "webhook attempt failed",
                extra={"endpoint_id": endpoint_id, "msg_id": due.msg_id, "error": attempt.error},
            )
        return False
