"""herald's Prometheus metrics: one definition each, recorded by middleware and the senders.

Defining a metric opens nothing. In a ``herald worker`` process prometheus_client
runs in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``herald worker``
before dramatiq forks its processes): every process writes its own files and the
stage's exposition server (``infra.metrics_http``) adds them up. Elsewhere (the
``api`` process, tests) the metrics live in this process's default registry.

Ports: stage ``S`` of a deployment serves ``/metrics`` on ``HERALD_METRICS_PORT +
METRICS_OFFSETS[S]``; ``HERALD_METRICS_PORT=0`` turns every exposition server off.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from infra import topology

#: Offset of each process type's metrics port from ``HERALD_METRICS_PORT`` (stable: add, never reorder).
METRICS_OFFSETS: dict[str, int] = {
    "route": 0,
    "render": 1,
    "sms": 2,
    "email": 3,
    "history": 4,
    "collect": 5,
    "ingest": 6,
    "scheduler": 7,
    "webhooks": 8,
}

#: Outcomes of one processing try of a stage message.
OK, RETRIED, FAILED, DEAD_LETTERED = "ok", "retried", "failed", "dead_lettered"

MESSAGES = Counter(
    "herald_messages",
    "Stage messages processed, by outcome: ok; retried (back to the queue for another try); "
    "failed (gave up after retries, to .XQ); dead_lettered (permanent error or expired: "
    "to .XQ without a retry).",
    ["stage", "outcome"],
)
RETRIES = Counter(
    "herald_message_retries",
    "Tries put back on the queue: kind=error (an exception, backoff) or deferred "
    "(the stage chose to come back later: a busy sender, an attempt in flight, Retry-After).",
    ["stage", "kind"],
)
DURATION = Histogram(
    "herald_message_duration_seconds",
    "Time spent processing one stage message (one try).",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
PROVIDER_ERRORS = Counter(
    "herald_provider_errors",
    "Error answers from a provider (each failed call, in-call retries included), by provider code "
    "('none' when the answer carried no code: timeouts, connection errors).",
    ["provider", "code"],
)
SMS_SEGMENTS = Counter("herald_sms_segments_sent", "SMS segments the provider accepted.")
SMS_CREDIT = Counter(
    "herald_sms_credit_segments",
    "SMS credit, in segments, reserved before a send or refunded after a final failure.",
    ["operation"],
)
NOTIFICATIONS = Counter(
    "herald_notifications",
    "Notifications reaching a status (forward moves only; delivered, failed, skipped and "
    "undelivered are final), by channel.",
    ["channel", "status"],
)

INGESTED = Counter(
    "herald_ingest_messages",
    "Messages the ingest process took from the events exchange, by outcome: ingested (valid, handed to "
    "route, confirmed) or dead_lettered (invalid, to the ingest .XQ with its reason).",
    ["outcome"],
)
REMINDERS = Counter(
    "herald_reminders_published",
    "reminder.due events the scheduler published (confirmed), by kind: due, or republished "
    "(a claim a crashed scheduler left unconfirmed).",
    ["kind"],
)
WEBHOOKS = Counter(
    "herald_webhooks",
    "What the webhooks process did with the status outbox, by outcome: fanned_out (outbox rows "
    "made into deliveries due to endpoints), delivered (a 2xx from the endpoint), failed (an "
    "attempt that did not get one; retried later), published (rows confirmed on the status "
    "exchange), paused (an endpoint paused after failing in a row), pruned (rows past their "
    "retention, deleted with their deliveries and attempts).",
    ["outcome"],
)
#: ``herald_webhooks_total``'s outcomes (each series shown from the start, at 0).
WEBHOOK_OUTCOMES = ("fanned_out", "delivered", "failed", "published", "paused", "pruned")
STATUS_SWEEP = Counter(
    "herald_status_sweep",
    "SMS the status sweep looked up at the provider, by outcome: the status it reported "
    "(delivered, undelivered, failed), unchanged (the provider has not moved on), or error.",
    ["outcome"],
)
BREAKER_TRANSITIONS = Counter(
    "herald_breaker_transitions",
    "Circuit breaker state changes of a provider (docs/failover.md), by the state it moved to: "
    "open, half_open, closed.",
    ["provider", "state"],
)
BREAKER_STATE = Gauge(
    "herald_breaker_state",
    "A provider's circuit breaker as last seen by the senders: 0 closed, 1 half-open, 2 open.",
    ["provider"],
    multiprocess_mode="mostrecent",
)
#: ``herald_breaker_state``'s value of each state.
BREAKER_LEVELS = {"closed": 0, "half_open": 1, "open": 2}
SMS_PROVIDER_SENDS = Counter(
    "herald_sms_provider_sends",
    "SMS sends by provider and what they came to: accepted, refused (permanent), failed "
    "(transient or ambiguous), failover (the send went to a provider after the first of its "
    "organisation's list).",
    ["provider", "outcome"],
)


def stage_of(queue_name: str, prefix: str) -> str:
    """The stage a queue belongs to: ``herald.sms.DQ`` → ``sms``; a foreign queue keeps its name."""
    name = queue_name.removesuffix(".DQ").removesuffix(".XQ")
    return name.removeprefix(f"{prefix}.")


def metrics_port(base: int, process_type: str) -> int | None:
    """The port a process type serves ``/metrics`` on, or None when metrics are off (base 0)."""
    if base == 0 or process_type not in METRICS_OFFSETS:
        return None
    return base + METRICS_OFFSETS[process_type]


def single_stage(queues: set[str] | None, prefix: str) -> str | None:
    """The one stage a worker consumes (its queue and delay queue), else None (several or all)."""
    if not queues:
        return None
    stages = {stage_of(q, prefix) for q in queues}
    if len(stages) != 1:
        return None
    (stage,) = stages
    return stage if stage in topology.STAGES + topology.PLAIN_STAGES else None


def provider_error(provider: str, code: int | None) -> None:
    """Count one error answer from a provider."""
    PROVIDER_ERRORS.labels(provider=provider, code=str(code) if code is not None else "none").inc()
