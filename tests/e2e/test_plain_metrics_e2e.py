"""The plain processes (ingest, the scheduler) serve /metrics on the base port plus their offset,
and a port already taken costs a warning, never the process."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

from infra.metrics import METRICS_OFFSETS
from tests.conftest import wait_for
from tests.e2e.conftest import BIN, Deployment, free_port, sample, scrape
from tests.factories import invoice_created
from tests.faults.helpers import publish_raw


def _metrics_port(deployment: Deployment, process_type: str) -> int:
    port = free_port()
    deployment.env["HERALD_METRICS_PORT"] = str(port - METRICS_OFFSETS[process_type])
    return port


def test_ingest_counts_what_it_ingested_and_dead_lettered(deployment: Deployment) -> None:
    port = _metrics_port(deployment, "ingest")
    deployment.start(str(BIN / "herald"), "worker", "ingest", log="ingest.log")
    wait_for(lambda: "ingest consuming" in deployment.log("ingest.log"), timeout=60, what="ingest")
    wait_for(lambda: scrape(port), timeout=30, what="ingest's /metrics")

    good = invoice_created("evt_metrics_ok")
    bad = {**invoice_created("evt_metrics_bad"), "org_id": ""}  # breaks the contract
    publish_raw(deployment, [good, bad])
    wait_for(
        lambda: (
            sample(scrape(port), 'herald_ingest_messages_total{outcome="ingested"}') == 1
            and sample(scrape(port), 'herald_ingest_messages_total{outcome="dead_lettered"}') == 1
        ),
        timeout=60,
        what="one message ingested and one dead-lettered, counted",
    )


def test_the_scheduler_counts_the_reminders_it_published(deployment: Deployment) -> None:
    assert deployment.herald("orgs", "reminders", "set", "acme", "+1").returncode == 0
    deployment.start(str(BIN / "herald"), "worker", "route", log="route.log")
    due = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    event = invoice_created("evt_inv_metrics", id="INV-M", due_date=due, send=False)
    assert deployment.herald("publish", "-", stdin=json.dumps(event) + "\n").returncode == 0

    def routed() -> bool:
        try:
            return bool(deployment.query("SELECT invoice_id FROM invoices"))
        except Exception:  # route has not migrated the database yet
            return False

    wait_for(routed, timeout=60, what="the invoice routed")
    port = _metrics_port(deployment, "scheduler")
    deployment.start(str(BIN / "herald"), "scheduler", "--interval", "0.5", log="scheduler.log")
    wait_for(
        lambda: sample(scrape(port), 'herald_reminders_published_total{kind="due"}') == 1,
        timeout=60,
        what="the reminder published, counted",
    )


def test_a_taken_metrics_port_is_a_warning_and_the_process_runs_on(deployment: Deployment) -> None:
    port = _metrics_port(deployment, "scheduler")
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", port))  # where the scheduler would listen
        taken.listen()
        process = deployment.start(str(BIN / "herald"), "scheduler", "--interval", "0.5", log="scheduler.log")
        wait_for(
            lambda: "metrics port taken" in deployment.log("scheduler.log"), timeout=60, what="the warning"
        )
        wait_for(
            lambda: "scheduler started" in deployment.log("scheduler.log"), timeout=60, what="the scheduler"
        )
        assert process.poll() is None
