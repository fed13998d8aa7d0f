"""A provider's bad day mid-run: a storm of 5xx answers, and one of 429 with Retry-After.
Each SMS is retried until it gets through, sent exactly once, and delivered."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import (
    SENT,
    assert_exactly_once,
    count,
    faults,
    prepare,
    publish,
    start_all,
    wait_delivered,
)

EVENTS = 150

STORMS: dict[str, dict[str, Any]] = {
    "5xx": {"times": 200, "status": 503, "code": 20503},
    "429": {"times": 200, "status": 429, "code": 20429, "retry_after": 1},
}


@pytest.mark.parametrize("storm", list(STORMS))
def test_a_provider_storm_mid_run_delays_but_never_loses_or_doubles(
    deployment: Deployment, storm: str
) -> None:
    # Small batches and a provider slow enough that the storm lands mid-run: with batches of 100
    # sent 16 at a time, the whole run can be over before the storm is called up.
    sandbox_url = prepare(deployment, HERALD_STAGE_BATCH_SIZE="10")
    faults(sandbox_url, delay_seconds=0.1)
    start_all(deployment)
    publish(deployment, EVENTS, run=f"storm-{storm}")
    wait_for(lambda: count(deployment, SENT) >= 10, timeout=60, what="the run under way")
    faults(sandbox_url, **STORMS[storm])  # the next 200 requests fail

    wait_for(lambda: faults(sandbox_url)["pending"] == 0, timeout=60, what="the storm to blow over")
    wait_delivered(deployment, EVENTS)
    assert_exactly_once(deployment, sandbox_url, EVENTS)
    retried = deployment.query(
        "SELECT count(*), min(http_status), max(http_status) FROM delivery_attempts WHERE outcome = 'retry'"
    )[0]
    assert retried[0] >= 1
    assert retried[1] == retried[2] == STORMS[storm]["status"]  # every retry in the log was the storm
