"""PostgreSQL stopped mid-run for 10 s (``pg_ctl stop -m fast``), then started again on the same port:
every stage retries its database errors with backoff (transient, never dead-lettered), the pool
reconnects (``pool_pre_ping``), and every SMS is sent exactly once and delivered.

The test runs its own cluster: stopping the session's server would break every other test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import (
    SENT,
    STAGES,
    assert_exactly_once,
    count,
    delete_queues,
    faults,
    prepare,
    publish,
    start_all,
    wait_delivered,
)
from tooling.local.postgres import LocalPostgres

EVENTS = 200
#: Published while the database is down.
DURING = 40
DOWN_SECONDS = 10


@pytest.fixture
def cluster() -> Iterator[LocalPostgres]:
    cluster = LocalPostgres()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def deployment(herald_env: dict[str, str], tmp_path: Path, cluster: LocalPostgres) -> Iterator[Deployment]:
    assert cluster.url is not None
    deployment = Deployment(herald_env, tmp_path, cluster.url)
    yield deployment
    deployment.stop_all()  # before the cluster goes
    delete_queues(deployment)


def test_the_database_down_for_10s_mid_run_loses_nothing_and_sends_nothing_twice(
    deployment: Deployment, cluster: LocalPostgres
) -> None:
    # The test's backoff (0.1-2 s) would spend dramatiq's default 10 retries within the outage: a
    # retry budget of 40 lasts well over 40 s of it. Production's (0.5-300 s) lasts hours.
    sandbox_url = prepare(deployment, HERALD_METRICS_PORT="0", HERALD_MAX_RETRIES="40")
    faults(sandbox_url, delay_seconds=0.1)  # a provider slow enough that the run lasts a while
    processes = start_all(deployment, (*STAGES, "api"))
    publish(deployment, EVENTS - DURING, run="database-outage")
    wait_for(lambda: count(deployment, SENT) >= 30, timeout=60, what="30 SMS sent")

    cluster.halt()
    began = time.monotonic()
    # route and render are done with the first events by now: these meet the outage in every stage.
    publish(deployment, DURING, run="database-outage", start=EVENTS - DURING + 1)
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - began)))  # the rest of the outage
    cluster.resume()
    assert count(deployment, SENT) < EVENTS, "the outage must land mid-run"

    wait_delivered(deployment, EVENTS, timeout=90)
    assert all(p.poll() is None for p in processes.values()), "every process rode out the outage"
    assert_exactly_once(deployment, sandbox_url, EVENTS)
    assert faults(sandbox_url)["requests"] == EVENTS  # the provider was asked once per SMS
    dead = deployment.herald("dlq", "list", "--json")
    assert dead.returncode == 0, dead.stderr
    assert set(json.loads(dead.stdout).values()) == {0}  # database errors were retried, never dead-lettered
