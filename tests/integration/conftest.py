"""Integration fixtures: the real broker and a real store (SQLite and PostgreSQL), in this process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from infra import topology
from infra.bootstrap import Services, bootstrap, shutdown
from infra.settings import Settings, get_settings
from tests.conftest import RUN_PREFIX


@pytest.fixture
def store(database_url: str) -> Iterator[Services]:
    """Booted services on a fresh database of each store (migrations applied), no broker needed."""
    shutdown()
    settings = Settings(database_url=database_url)  # type: ignore[arg-type]
    yield bootstrap(settings)
    shutdown()


@pytest.fixture(scope="session")
def configured_env(herald_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Point this process's settings (and so ``infra.broker``) at the test broker."""
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
def pipeline(
    configured_env: dict[str, str],
    database_url: str,
    twilio_sandbox: Any,
    smtp_sandbox: Any,
    gocardless_sandbox: Any,
) -> Iterator[Services]:
    """The four stages consuming from the real broker in this process, on a fresh store of each kind."""
    import dramatiq

    os.environ["HERALD_DATABASE_URL"] = database_url
    os.environ["HERALD_TWILIO_BASE_URL"] = twilio_sandbox.url
    os.environ["HERALD_SMTP_HOST"] = smtp_sandbox.host
    os.environ["HERALD_SMTP_PORT"] = str(smtp_sandbox.port)
    os.environ["HERALD_SMTP_FROM"] = SMTP_FROM
    # A test that pointed GoCardless at a sandbox of its own first (``gc_env``) keeps it.
    gocardless = {
        "HERALD_GOCARDLESS_ACCESS_TOKEN": GOCARDLESS_TOKEN,
        "HERALD_GOCARDLESS_BASE_URL": gocardless_sandbox.url,
    }
    gocardless_before = {key: os.environ.get(key) for key in gocardless}
    if gocardless_before["HERALD_GOCARDLESS_BASE_URL"] is None:
        os.environ.update(gocardless)
    get_settings.cache_clear()
    shutdown()
    services = bootstrap(get_settings())

    import workers.collect
    import workers.email
    import workers.history
    import workers.render
    import workers.route
    import workers.sms  # noqa: F401  (declares the actors)
    from infra.broker import broker

    # This thread's connection may have sat idle since an earlier test, past RabbitMQ's heartbeat:
    # drop it (dramatiq opens a fresh one on first use) rather than flush through a dead socket.
    del broker.connection
    broker.flush_all()
    worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield services
    worker.stop()
    broker.flush_all()
    shutdown()
    smtp_keys = ("HERALD_SMTP_HOST", "HERALD_SMTP_PORT", "HERALD_SMTP_FROM")
    for key in ("HERALD_DATABASE_URL", "HERALD_TWILIO_BASE_URL", *smtp_keys):
        os.environ.pop(key, None)
    for key, value in gocardless_before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()
