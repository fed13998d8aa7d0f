"""The broker's nodes: ``HERALD_AMQP_URL`` as one AMQP URL or a comma-separated list, one per
RabbitMQ cluster node, and the connections every process opens from it.

Every process connects to the first node of the list that answers and, when that connection is
lost, opens the next one on the same list from its start (the node that died no longer answers,
so the next in order is used). The order is the operator's lever: each host lists its nearest
node first, spreading the cluster's connections.

Nothing here connects on import; errors never carry a URL's password (``redact_url``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import pika

from infra.errors import ConfigurationError

# ``scheme://user:password@``: everything from the ":" after the user to the last "@" (a password
# with a stray "@" is masked whole; a path with one loses more than needed, never less).
_PASSWORD = re.compile(r"^([^:/]*://[^:@/]*:).*@")
#: Schemes pika's ``URLParameters`` understands.
SCHEMES = ("amqp", "amqps")
#: More nodes than any cluster herald is run on; a longer list is a mistake (a pasted file).
MAX_NODES = 16
#: Queue types that are replicated across a cluster's nodes.
REPLICATED_QUEUE_TYPES = ("quorum",)


def split_urls(value: str) -> list[str]:
    """The URLs of a ``HERALD_AMQP_URL`` value, in order; ``ValueError`` naming the first wrong
    entry (by position, its password masked) when one is empty, not an AMQP URL, has no host or a
    bad port, or when the list has duplicates or more than ``MAX_NODES`` entries."""
    entries = [entry.strip() for entry in value.split(",")]
    if len(entries) > MAX_NODES:
        raise ValueError(f"{len(entries)} AMQP URLs; at most {MAX_NODES} (one per cluster node)")
    seen: set[str] = set()
    for position, url in enumerate(entries, start=1):
        where = f"AMQP URL #{position}" if len(entries) > 1 else "the AMQP URL"
        if not url:
            raise ValueError(f"{where} is empty (a stray comma?)")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            # urlsplit's message may quote the URL: say what is wrong without it.
            reason = "bad port" if "port" in str(exc).lower() else "not a URL"
            raise ValueError(f"{where} ({_safe(url)}): {reason}") from None
        if parts.scheme not in SCHEMES:
            raise ValueError(
                f"{where} ({_safe(url)}): scheme {parts.scheme or '(none)'!r}, expected amqp:// or amqps://"
            )
        if not parts.hostname:
            raise ValueError(f"{where} ({_safe(url)}): no host")
        key = f"{parts.scheme}://{parts.hostname}:{port or ''}{parts.path}"
        if key in seen:
            raise ValueError(f"{where} ({_safe(url)}): the same node twice")
        seen.add(key)
    return entries


def _safe(url: str) -> str:
    """A URL fit for an error message: the password masked however broken the rest, and short."""
    return _PASSWORD.sub(r"\1***@", url)[:120]


def describe(urls: Sequence[str]) -> str:
    """The nodes, for logs and errors: ``host:port`` each, comma-separated, no credentials."""
    return ", ".join(node_name(url) for url in urls)


def node_name(url: str) -> str:
    """One node as ``host:port`` (no credentials, no vhost)."""
    parts = urlsplit(url)
    default = 5671 if parts.scheme == "amqps" else 5672
    return f"{parts.hostname}:{parts.port or default}"


def parameters(
    urls: Sequence[str], *, timeout: float | None = None, heartbeat: int | None = None
) -> list[pika.URLParameters]:
    """pika's parameters for each node in order, tried once each (``connection_attempts`` is
    pika's per round over the whole list; the caller's own loop retries). ``timeout`` bounds the
    socket, the handshake and a blocked connection when given."""
    out = []
    for url in urls:
        params = pika.URLParameters(url)
        params.connection_attempts = 1
        params.retry_delay = 0
        if timeout is not None:
            params.socket_timeout = timeout
            params.stack_timeout = timeout
            params.blocked_connection_timeout = timeout
        if heartbeat is not None:
            params.heartbeat = heartbeat
        out.append(params)
    return out


def connect(urls: Sequence[str], *, timeout: float | None = None) -> pika.BlockingConnection:
    """A blocking connection to the first node of ``urls`` that answers (pika tries them in
    order); ``pika.exceptions.AMQPConnectionError`` when none does."""
    return pika.BlockingConnection(parameters(urls, timeout=timeout))


def check_cluster_queues(
    urls: Sequence[str], queue_type: str, *, allowed: bool, setting: str = "HERALD_QUEUE_TYPE"
) -> None:
    """Refuse queues that are not replicated against several nodes: a classic queue lives on one
    node, so its messages are unreachable (or lost) while that node is down. ``allowed``
    (``HERALD_ALLOW_CLASSIC_QUEUES_ON_CLUSTER``) lets it run anyway."""
    if len(urls) > 1 and queue_type not in REPLICATED_QUEUE_TYPES and not allowed:
        raise ConfigurationError(
            f"HERALD_AMQP_URL lists {len(urls)} nodes ({describe(urls)}) but {setting} is "
            f"{queue_type!r}: a {queue_type} queue lives on one node and is lost with it. Set "
            f"{setting}=quorum (a new HERALD_QUEUE_PREFIX, or the queues deleted first), or "
            "HERALD_ALLOW_CLASSIC_QUEUES_ON_CLUSTER=true to run anyway"
        )


def check_cluster_store(urls: Sequence[str], database_url: str, *, allowed: bool) -> None:
    """Refuse SQLite with several broker nodes: several hosts cannot share one SQLite file.
    ``allowed`` (``HERALD_ALLOW_SQLITE_ON_CLUSTER``) lets it run anyway (one host, a cluster for
    the broker alone)."""
    if len(urls) > 1 and database_url.startswith("sqlite") and not allowed:
        raise ConfigurationError(
            f"HERALD_AMQP_URL lists {len(urls)} nodes ({describe(urls)}) but HERALD_DATABASE_URL is "
            "SQLite, which hosts cannot share: use PostgreSQL (pip install 'herald[postgres]', "
            "HERALD_DATABASE_URL=postgresql+psycopg://…), or HERALD_ALLOW_SQLITE_ON_CLUSTER=true "
            "when every process runs on this one host"
        )
