"""What ``herald status`` shows: per stage, queue depths, consumers and message rates.

Depths and consumers come from passive declares (AMQP, always there). Rates come from
RabbitMQ's management API when it answers; otherwise the ready depths are read twice a
second apart and the net change per second is shown instead, labelled as such.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pika

from infra import amqp_nodes, topology
from infra.settings import Settings

MANAGEMENT_PORT = 15672


@dataclass
class StageStatus:
    """One stage's queues. ``None``: that queue is not declared (yet)."""

    stage: str
    queue: str
    ready: int | None = None
    consumers: int | None = None
    delayed: int | None = None
    dead_letters: int | None = None
    published_per_s: float | None = None
    delivered_per_s: float | None = None
    #: Sampled mode only: how fast the ready count grew (+) or shrank (-), per second.
    net_change_per_s: float | None = None


def management_url(amqp_url: str, explicit: str | None = None) -> str:
    """The management API's base URL: ``explicit``, else the AMQP host on port 15672, same credentials."""
    if explicit:
        return explicit.rstrip("/")
    parts = urlsplit(amqp_url)
    scheme = "https" if parts.scheme == "amqps" else "http"
    auth = f"{parts.username}:{parts.password}@" if parts.username else ""
    return urlunsplit((scheme, f"{auth}{parts.hostname or '127.0.0.1'}:{MANAGEMENT_PORT}", "", "", ""))


def vhost_of(amqp_url: str) -> str:
    """The AMQP URL's virtual host (``/`` when the path is empty)."""
    path = urlsplit(amqp_url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def stage_queues(prefix: str) -> list[tuple[str, str]]:
    """(stage, queue) of every stage, the plain ones first."""
    return [(s, topology.queue_name(prefix, s)) for s in topology.PLAIN_STAGES + topology.STAGES]


def read_depths(amqp_url: str | Sequence[str], prefix: str) -> list[StageStatus]:
    """Passive declares of each stage's queue, delay queue and dead-letter queue (one connection,
    to the first of the nodes that answers: a cluster's nodes all see every queue)."""
    urls = [amqp_url] if isinstance(amqp_url, str) else list(amqp_url)
    connection = amqp_nodes.connect(urls)
    try:
        rows = []
        for stage, queue in stage_queues(prefix):
            row = StageStatus(stage, queue)
            main = _declare_passive(connection, queue)
            if main is not None:
                row.ready, row.consumers = main
            delayed = _declare_passive(connection, topology.delay_queue(queue))
            row.delayed = delayed[0] if delayed else None
            dead = _declare_passive(connection, topology.dead_letter_queue(queue))
            row.dead_letters = dead[0] if dead else None
            rows.append(row)
        return rows
    finally:
        connection.close()


def _declare_passive(connection: pika.BlockingConnection, queue: str) -> tuple[int, int] | None:
    # A passive declare of a missing queue closes its channel, so each gets a channel of its own.
    channel = connection.channel()
    try:
        method = channel.queue_declare(queue, passive=True).method
    except pika.exceptions.ChannelClosedByBroker:
        return None
    channel.close()
    return method.message_count, method.consumer_count


def fetch_management(base_url: str, vhost: str, timeout: float = 2.0) -> list[dict[str, Any]]:
    """Every queue of the vhost from the management API (raises when it does not answer)."""
    parts = urlsplit(base_url)
    clean = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port or MANAGEMENT_PORT}", "", "", ""))
    request = urllib.request.Request(f"{clean}/api/queues/{quote(vhost, safe='')}")  # noqa: S310
    if parts.username:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only)
        return list(json.load(response))


def apply_management_rates(rows: list[StageStatus], queues: list[dict[str, Any]]) -> None:
    """Fill published/delivered per second from the management API's queue list."""
    by_name = {q.get("name"): q.get("message_stats") or {} for q in queues}
    for row in rows:
        if row.ready is None:
            continue
        stats = by_name.get(row.queue, {})
        row.published_per_s = float((stats.get("publish_details") or {}).get("rate", 0.0))
        row.delivered_per_s = float((stats.get("deliver_get_details") or {}).get("rate", 0.0))


def apply_sampled_rates(first: list[StageStatus], second: list[StageStatus], seconds: float) -> None:
    """Net change of each ready count between two reads, per second, onto ``second``."""
    before = {r.queue: r.ready for r in first}
    for row in second:
        earlier = before.get(row.queue)
        if row.ready is not None and earlier is not None and seconds > 0:
            row.net_change_per_s = round((row.ready - earlier) / seconds, 2)


def collect(
    settings: Settings,
    *,
    sample_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The whole report: rows per stage and where the rates came from."""
    urls = settings.amqp_urls
    rows = read_depths(urls, settings.queue_prefix)
    # On a cluster, the management API of the first node that answers (any node reports every queue).
    amqp_url = next((url for url in urls if _answers(url)), urls[0]) if len(urls) > 1 else urls[0]
    explicit = settings.rabbitmq_management_url
    base = management_url(amqp_url, explicit.get_secret_value() if explicit else None)
    try:
        apply_management_rates(rows, fetch_management(base, vhost_of(amqp_url)))
        source, note = "management", "rates from RabbitMQ's management API"
    except (OSError, ValueError) as exc:
        # No management plugin (or no access): two reads a second apart give the net change only.
        started = time.monotonic()
        sleep(sample_seconds)
        second = read_depths(urls, settings.queue_prefix)
        apply_sampled_rates(rows, second, time.monotonic() - started)
        rows = second
        source = "sampled"
        note = (
            f"management API did not answer ({type(exc).__name__}); rates are the net change of "
            f"each ready count over {sample_seconds:g}s, not published/delivered"
        )
    return {"prefix": settings.queue_prefix, "rates_source": source, "note": note, "stages": rows}


def _answers(url: str) -> bool:
    try:
        amqp_nodes.connect([url], timeout=2.0).close()
    except (pika.exceptions.AMQPError, OSError):
        return False
    return True


def as_json(report: dict[str, Any]) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {**report, "stages": [asdict(r) for r in report["stages"]]}
