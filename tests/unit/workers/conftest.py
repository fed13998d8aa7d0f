"""The stages' actors on dramatiq's ``StubBroker``, with the provider fakes and a SQLite store.

Each test composes what ``workers.start`` composes for a worker process, by hand: every stage's
actors declared on a ``StubBroker`` with herald's middleware (its retry policy: a permanent error
is dead-lettered, never retried), the services booted with ``FakeSms``, ``FakeEmail`` and
``FakeDirectDebit`` on a migrated SQLite store in ``tmp_path`` (the store is not a provider). A
test puts a message on a stage's queue and runs that stage's worker until the queue is drained;
what the stage emitted waits, unconsumed, in the next stage's queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from infra import topology
from infra.bootstrap import Services, bootstrap, shutdown
from infra.broker import Emitter, herald_middleware
from infra.settings import Settings
from infra.store.directory import upsert_customer
from infra.store.tables import delivery_attempts, notifications
from schemas.directory import CustomerRecord
from schemas.messages import StageMessage
from tests.factories import customer
from tests.fakes import FakeDirectDebit, FakeEmail, FakeSms
from workers.registry import declare

PREFIX = "herald"
PUBLIC_URL = "https://herald.example"
#: The longest a test waits for a stage to drain its queue.
DRAIN_SECONDS = 15


@dataclass
class Stages:
    """The declared stages, their services and the fakes they call."""

    broker: StubBroker
    services: Services
    sms: FakeSms
    email: FakeEmail
    direct_debit: FakeDirectDebit

    @staticmethod
    def queue(stage: str) -> str:
        return topology.queue_name(PREFIX, stage)

    def deliver(self, message: StageMessage) -> None:
        """Put a registry message on the queue of the stage that consumes it."""
        self.services.emitter.emit(message)

    def deliver_body(self, stage: str, actor: str, body: Any) -> None:
        """Put any body (a malformed one too) on a stage's queue, for ``actor``."""
        message = dramatiq.Message(
            queue_name=self.queue(stage), actor_name=actor, args=(body,), kwargs={}, options={}
        )
        self.broker.enqueue(message)

    def run(self, stage: str) -> None:
        """Run ``stage``'s worker until its queue and its delay queue are empty (or fail the test)."""
        worker = dramatiq.Worker(
            self.broker, queues={self.queue(stage)}, worker_timeout=100, worker_threads=1
        )
        worker.start()
        try:
            self.broker.join(self.queue(stage), timeout=DRAIN_SECONDS * 1000, fail_fast=False)
        finally:
            worker.stop()

    def emitted(self, stage: str) -> list[tuple[str, Any]]:
        """What waits in ``stage``'s queue, oldest first: (actor name, body) of each message."""
        waiting = list(self.broker.queues[self.queue(stage)].queue)
        return [(m.actor_name, m.args[0]) for m in map(dramatiq.Message.decode, waiting)]

    def take(self, stage: str) -> list[tuple[str, Any]]:
        """``emitted``, and the queue emptied (as if the next stage had consumed them)."""
        found = self.emitted(stage)
        self.broker.flush(self.queue(stage))
        return found

    def dead_letters(self, stage: str) -> list[Any]:
        """The messages ``stage`` gave up on (dead-lettered), with their exceptions."""
        return list(self.broker.dead_letters_by_queue[self.queue(stage)])

    def notification(self, nid: str) -> Any:
        """The notification's row as stored."""
        with self.services.reading() as conn:
            return conn.execute(select(notifications).where(notifications.c.id == nid)).one()

    def notifications(self) -> list[Any]:
        with self.services.reading() as conn:
            return list(conn.execute(select(notifications).order_by(notifications.c.channel)).all())

    def attempts(self, nid: str) -> list[str]:
        """The outcomes of a notification's provider attempts, in order."""
        with self.services.reading() as conn:
            rows = conn.execute(
                select(delivery_attempts.c.outcome)
                .where(delivery_attempts.c.notification_id == nid)
                .order_by(delivery_attempts.c.id)
            )
            return [r.outcome for r in rows]

    def batch_reports(self) -> dict[str, list[dict[str, Any]]]:
        """Every report history was sent, by notification; batch messages only."""
        found = self.take("history")
        assert {actor for actor, _ in found} <= {"record_statuses"}
        reports: dict[str, list[dict[str, Any]]] = {}
        for _, body in found:
            for report in body["reports"]:
                reports.setdefault(report["notification_id"], []).append(report)
        return reports


def settings_for(tmp_path: Path, **fields: Any) -> Settings:
    """Explicit settings: a SQLite store in ``tmp_path``, every provider configured (the fakes answer)."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'herald.db'}",
        "queue_prefix": PREFIX,
        "public_url": PUBLIC_URL,
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": "test-token",
        "twilio_from": "+15005550006",
        "smtp_from": "billing@acme.example",
        "gocardless_access_token": "gc-test-token",
        "sms_segments_per_second": 0,
        # Quiet hours off, as for every other test, except where a test sets windows and a clock:
        # with the default windows a Finnish contact's SMS was held whenever this ran after 19:00 UTC.
        "default_send_windows": "sms=any,email=any",
        "max_retries": 3,
        "min_backoff_ms": 10,
        "max_backoff_ms": 50,
        "log_format": "json",
    }
    return Settings(**{**values, **fields})


@pytest.fixture
def stages(tmp_path: Path) -> Iterator[Stages]:
    """Every stage declared on a ``StubBroker``, booted with the fakes on a fresh SQLite store."""
    settings = settings_for(tmp_path)
    broker = StubBroker(middleware=herald_middleware(settings, services=lambda: services))
    sms, email, direct_debit = FakeSms(), FakeEmail(sender="billing@acme.example"), FakeDirectDebit()
    services = bootstrap(
        settings, emitter=Emitter(broker, PREFIX), sms=sms, email=email, direct_debit=direct_debit
    )
    declare(broker, lambda: services, topology.STAGES, queue_prefix=PREFIX)
    yield Stages(broker, services, sms, email, direct_debit)
    broker.close()
    shutdown(services)


def add_customer(services: Services, **record: Any) -> None:
    """One customer of ``acme`` in the directory (``tests.factories.customer`` fields)."""
    with services.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer(**record)), region="FI")
