"""The outbox relay killed with SIGKILL twice mid-run: every event delivered, none notified twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from infra.bootstrap import Services
from infra.store.directory import upsert_customer
from infra.store.tables import notifications
from producers.outbox import add_event, create_outbox_table, outbox
from schemas.directory import CustomerRecord
from tests.conftest import wait_for
from tooling.demo.data import demo_customers, invoice_events

BIN = Path(sys.executable).parent
EVENTS = 1000


def test_the_relay_killed_twice_mid_run_delivers_every_event_exactly_once(
    pipeline: Services, twilio_sandbox: Any, tmp_path: Path
) -> None:
    with pipeline.transaction() as conn:
        for record in demo_customers(200):
            upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
    upstream_url = f"sqlite:///{tmp_path / 'upstream.db'}"
    upstream = create_engine(upstream_url)
    create_outbox_table(upstream)
    events = invoice_events(EVENTS, run="outbox")
    written = 0

    def write(upto: int) -> None:
        # The upstream: its invoice and its event in one transaction, ten at a time.
        nonlocal written
        for first in range(written, upto, 10):
            with Session(upstream) as session, session.begin():
                for event in events[first : min(first + 10, upto)]:
                    session.execute(text("SELECT 1"))  # stands in for the upstream's own invoice write
                    add_event(session, event)
        written = upto

    def sent() -> int:
        with upstream.connect() as conn:
            return int(conn.execute(select(func.count()).where(outbox.c.sent_at.is_not(None))).scalar_one())

    def start_relay() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(BIN / "herald"),
                "outbox",
                "relay",
                "--database",
                upstream_url,
                "--batch",
                "20",
                "--poll",
                "0.05",
            ],
            env={
                **os.environ,
                # The relay publishes where the in-process pipeline consumes.
                "HERALD_AMQP_URL": pipeline.settings.amqp_url.get_secret_value(),
                "HERALD_QUEUE_PREFIX": pipeline.settings.queue_prefix,
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # Each relay starts on a backlog the upstream wrote while no relay ran, and is killed as soon
    # as it has made progress on it, so the kill lands mid-run: rows written and not yet sent. The
    # last part is written while the third relay runs (upstream writes and relaying at once).
    pending_at_kill: list[int] = []
    write(400)
    relay = start_relay()
    try:
        for upto in (700, 800):
            floor = sent()
            wait_for(lambda floor=floor: sent() > floor, timeout=60, interval=0.02, what="relay progress")
            relay.send_signal(signal.SIGKILL)
            relay.wait(10)
            pending_at_kill.append(written - sent())
            write(upto)
            relay = start_relay()
        writer = threading.Thread(target=write, args=(EVENTS,))
        writer.start()
        writer.join(60)
        wait_for(lambda: sent() == EVENTS, timeout=120, what="every outbox row marked sent")
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(30)
    assert len(pending_at_kill) == 2
    assert all(pending > 0 for pending in pending_at_kill), (
        f"a kill landed with nothing pending: {pending_at_kill}"
    )

    def delivered() -> bool:
        with pipeline.transaction() as conn:
            rows = conn.execute(
                select(notifications.c.status, func.count())
                .where(notifications.c.channel == "sms", notifications.c.reason == "send")
                .group_by(notifications.c.status)
            ).all()
        return dict(rows) == {"sent": EVENTS}

    wait_for(delivered, timeout=240, interval=0.5, what=f"{EVENTS} SMS sent")
    captured = twilio_sandbox.messages()
    assert len(captured) == EVENTS
    assert len({(m["to"], m["body"]) for m in captured}) == EVENTS  # nobody told twice
    with pipeline.transaction() as conn:
        per_event = conn.execute(
            select(notifications.c.event_id, func.count())
            .where(notifications.c.channel == "sms", notifications.c.reason == "send")
            .group_by(notifications.c.event_id)
        ).all()
    assert len(per_event) == EVENTS
    assert {count for _, count in per_event} == {1}
