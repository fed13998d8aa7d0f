"""The ``sms`` process killed with SIGKILL while 300 SMS are in flight, then restarted:
exactly 300 SMS at the provider, none twice, all 300 delivered in history."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import (
    SENT,
    assert_delivered_once,
    count,
    faults,
    kill,
    publish,
    start,
    start_run,
)

EVENTS = 300


def test_sms_killed_mid_run_and_restarted_sends_each_exactly_once(deployment: Deployment) -> None:
    sandbox_url, processes = start_run(deployment, delay_seconds=0.02)
    publish(deployment, EVENTS, run="kill")
    wait_for(lambda: count(deployment, SENT) >= 60, timeout=60, what="60 SMS sent")

    # Slow the provider right down, so the kill lands inside requests it goes on to accept.
    faults(sandbox_url, delay_seconds=1.0)
    wait_for(
        lambda: faults(sandbox_url)["in_flight"] >= 2, timeout=30, what="requests in flight at the provider"
    )
    kill(processes["sms"])
    faults(sandbox_url, delay_seconds=0.02)
    start(deployment, "sms", "2")

    assert_delivered_once(deployment, sandbox_url, EVENTS)
    # The kill cut attempts short after Twilio had accepted them (it answered them after the kill).
    # Each was resolved without a resend: by its status callback, which names the notification, or
    # by reconciling against Twilio's list on redelivery.
    accepted = deployment.query("SELECT count(*) FROM delivery_attempts WHERE outcome = 'accepted'")[0][0]
    assert accepted < EVENTS
