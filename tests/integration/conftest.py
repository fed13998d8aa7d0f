"""Integration fixtures: the real broker and a real store (SQLite and PostgreSQL), in this process."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pika
import pytest
from sqlalchemy import text, update
from sqlalchemy.engine import Connection

from infra import topology
from infra.bootstrap import Services, bootstrap, shutdown
from infra.broker import Emitter, build_broker
from infra.settings import Settings, get_settings
from infra.store.directory import upsert_customer
from infra.store.tables import notifications
from producers.publisher import Publisher
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tests.conftest import RUN_PREFIX, TEST_AMQP_URL, settings_of, wait_for
from tests.integration.webhook_helpers import FAST
from workers.registry import declare


@pytest.fixture
def webhook_fields() -> dict[str, Any]:
    """Settings a test adds to ``webhook_helpers.FAST`` for ``hooks`` (override it)."""
    return {}


@pytest.fixture
def hooks(database_url: str, webhook_fields: dict[str, Any]) -> Iterator[Services]:
    """Services on a fresh store with fast webhook retries (``webhook_helpers.FAST``)."""
    fields: dict[str, Any] = {**FAST, **webhook_fields}
    settings = Settings(database_url=database_url, amqp_url=TEST_AMQP_URL, queue_prefix=RUN_PREFIX, **fields)  # type: ignore[arg-type]
    services = bootstrap(settings)
    yield services
    shutdown(services)


@pytest.fixture
def store(database_url: str) -> Iterator[Services]:
    """Booted services on a fresh database of each store (migrations applied), no broker needed
    (what they would emit goes to this run's queues)."""
    settings = Settings(database_url=database_url, amqp_url=TEST_AMQP_URL, queue_prefix=RUN_PREFIX)  # type: ignore[arg-type]
    services = bootstrap(settings)
    yield services
    shutdown(services)


@pytest.fixture(scope="session")
def configured_env(herald_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Point this process's environment (what ``get_settings()`` and an in-process ``herald``
    command read) at the test broker."""
    saved = {k: os.environ.get(k) for k in herald_env}
    os.environ.update(herald_env)
    get_settings.cache_clear()
    yield herald_env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
    _delete_run_queues(herald_env["HERALD_AMQP_URL"])


def _delete_run_queues(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for stage in topology.STAGES:
            queue = topology.queue_name(RUN_PREFIX, stage)
            for name in (queue, topology.delay_queue(queue), topology.dead_letter_queue(queue)):
                channel.queue_delete(name)
    finally:
        connection.close()


def queue_depths(url: str, stage: str) -> tuple[int, int, int]:
    """Messages ready in a stage's queue, its delay queue and its dead-letter queue."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        queue = topology.queue_name(RUN_PREFIX, stage)
        counts: list[Any] = []
        for name in (queue, topology.delay_queue(queue), topology.dead_letter_queue(queue)):
            counts.append(channel.queue_declare(name, passive=True).method.message_count)
        return counts[0], counts[1], counts[2]
    finally:
        connection.close()


def import_customers(services: Services, *records: dict[str, Any]) -> None:
    """Store directory records as ``herald contacts import`` does (region FI), in one transaction."""
    with services.transaction() as conn:
        for record in records:
            upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")


def publish(settings: Settings, *events: dict[str, Any]) -> None:
    """Publish each event, in order, through a ``Publisher`` of these settings."""
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)


def cut_short(services: Services, notification_id: str) -> None:
    """Wind a sent notification back to ``sending``, with no provider id and claimed ten minutes
    ago: as if its worker had crashed after the provider took it, before recording the answer."""
    with services.transaction() as conn:
        conn.execute(
            update(notifications)
            .where(notifications.c.id == notification_id)
            .values(
                status=Status.SENDING,
                provider_id=None,
                attempted_at=datetime.now(UTC) - timedelta(minutes=10),
            )
        )


#: PostgreSQL: how many transactions of other sessions wait for a row lock.
_LOCK_WAITS = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted "
    "AND pid <> pg_backend_pid()"
)


def while_row_locked(
    services: Services, hold: Callable[[Connection], None], waiter: Callable[[], None]
) -> None:
    """PostgreSQL: ``hold`` runs in a transaction, and ``waiter``, on a thread of its own, comes to
    wait for a row lock ``hold`` took before that transaction commits; then it is let finish."""
    with services.engine.connect() as first, services.engine.connect() as watcher:
        with first.begin():
            hold(first)
            thread = threading.Thread(target=waiter)
            thread.start()
            wait_for(lambda: watcher.execute(_LOCK_WAITS).scalar_one() > 0, timeout=10, what="the row lock")
        thread.join(timeout=10)


def drain(url: str, queue: str) -> list[tuple[Any, bytes]]:
    """Take every message off ``queue`` (left empty): each one's properties and body, in order."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        found = []
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return found
            found.append((properties, body))
    finally:
        connection.close()


def race(workers: list[Callable[[], None]]) -> None:
    """Run each worker on a thread of its own, all let go at once; none may raise."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def go(work: Callable[[], None]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


@pytest.fixture
def twilio_sandbox(herald_env: dict[str, str]) -> Iterator[Any]:
    """The Twilio-compatible sandbox, on a free port, accepting the test credentials."""
    from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox

    with TwilioSandbox(
        SandboxConfig(herald_env["HERALD_TWILIO_ACCOUNT_SID"], herald_env["HERALD_TWILIO_AUTH_TOKEN"])
    ) as sandbox:
        yield sandbox


#: The From address of the test pipeline's emails.
SMTP_FROM = "Acme Billing <billing@acme.example>"


@pytest.fixture
def smtp_sandbox() -> Iterator[Any]:
    """The SMTP capture server, on a free port."""
    from tooling.sandboxes.smtp import SmtpSandbox

    with SmtpSandbox() as sandbox:
        yield sandbox


#: The access token the GoCardless sandbox accepts in tests.
GOCARDLESS_TOKEN = "sandbox_test_token"


@pytest.fixture
def gocardless_sandbox() -> Iterator[Any]:
    """The GoCardless-compatible sandbox, on a free port (webhooks are recorded, not sent)."""
    from tooling.sandboxes.gocardless import GoCardlessConfig, GoCardlessSandbox

    with GoCardlessSandbox(GoCardlessConfig(GOCARDLESS_TOKEN)) as sandbox:
        yield sandbox


@pytest.fixture
def pipeline_fields() -> dict[str, Any]:
    """Settings a test gives its pipeline over the fixture's (override it: ``public_url``, a
    GoCardless sandbox of its own…)."""
    return {}


@pytest.fixture
def pipeline(
    herald_env: dict[str, str],
    database_url: str,
    twilio_sandbox: Any,
    smtp_sandbox: Any,
    gocardless_sandbox: Any,
    pipeline_fields: dict[str, Any],
) -> Iterator[Services]:
    """The six stages consuming from the real broker in this process, on a fresh store of each kind.

    The composition of a worker process, done by hand: settings given explicitly, the broker built
    with them, the services booted on it, every stage's actors declared on it, one worker.
    """
    fields: dict[str, Any] = {
        "database_url": database_url,
        "twilio_base_url": twilio_sandbox.url,
        "smtp_host": smtp_sandbox.host,
        "smtp_port": smtp_sandbox.port,
        "smtp_from": SMTP_FROM,
        "gocardless_access_token": GOCARDLESS_TOKEN,
        "gocardless_base_url": gocardless_sandbox.url,
    }
    settings = settings_of(herald_env, **{**fields, **pipeline_fields})
    broker = build_broker(settings, services=lambda: services)
    services = bootstrap(settings, emitter=Emitter(broker, settings.queue_prefix))
    declare(broker, lambda: services, topology.STAGES, queue_prefix=settings.queue_prefix)
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield services
    worker.stop()
    broker.flush_all()
    broker.close()
    shutdown(services)
