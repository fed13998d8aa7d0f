"""The ``sms`` process killed with SIGKILL while it fails over from Twilio (a 503 storm) to Vonage
(slowed, so the kill lands inside requests Vonage goes on to take), then restarted: every SMS sent
exactly once across the two providers, none at Twilio, each cut-short attempt reconciled at
Vonage rather than resent anywhere."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.e2e.conftest import Deployment
from tests.faults.helpers import count, faults, kill, prepare, publish, start, start_all
from tooling.demo.data import DEMO_ORG
from tooling.sandboxes.vonage import VonageConfig, VonageSandbox

EVENTS = 120
KEY, SECRET = "abcd1234", "sandbox-secret"
SETTLED = "SELECT count(*) FROM notifications WHERE channel = 'sms' AND status IN ('sent', 'delivered')"


def test_sms_killed_while_failing_over_sends_each_exactly_once_across_the_providers(
    deployment: Deployment,
) -> None:
    with VonageSandbox(VonageConfig(KEY, SECRET)) as vonage:
        twilio_url = prepare(
            deployment,
            customers=EVENTS,
            HERALD_VONAGE_API_KEY=KEY,
            HERALD_VONAGE_API_SECRET=SECRET,
            HERALD_VONAGE_REST_URL=vonage.host,
            HERALD_VONAGE_API_URL=vonage.host,
            HERALD_VONAGE_CA_BUNDLE=vonage.ca_file,
            HERALD_VONAGE_REPORTS_LAG_SECONDS="0",
            HERALD_VONAGE_TIMEOUT_SECONDS="2",
            HERALD_VONAGE_FROM="ACME",
            HERALD_SMS_BREAKER_FAILURES="3",
            HERALD_SMS_BREAKER_COOL_DOWN_SECONDS="3600",
        )
        chose = deployment.herald("orgs", "set", DEMO_ORG, "--sms-providers", "twilio,vonage")
        assert chose.returncode == 0, chose.stderr
        faults(twilio_url, times=100_000, status=503, code=20503)
        vonage.faults.delay_seconds = 0.02
        processes = start_all(deployment)
        publish(deployment, EVENTS, run="failover-kill")
        wait_for(lambda: count(deployment, SETTLED) >= 20, timeout=90, what="20 SMS sent through vonage")

        vonage.faults.delay_seconds = 1.0
        wait_for(lambda: vonage.faults.in_flight >= 2, timeout=30, what="requests in flight at vonage")
        kill(processes["sms"])
        vonage.faults.delay_seconds = 0.02
        start(deployment, "sms", "2")

        wait_for(
            lambda: count(deployment, SETTLED) == EVENTS, timeout=180, interval=0.5, what=f"{EVENTS} SMS sent"
        )
        taken = vonage.messages()
        assert len(taken) == EVENTS
        assert len({(m["to"], m["message_body"]) for m in taken}) == EVENTS  # nobody told twice
        assert faults(twilio_url)["requests"] > 0  # the storm was met before the breaker opened
        assert deployment.query("SELECT count(*) FROM notifications WHERE provider = 'twilio'")[0][0] == 0
        ids = deployment.query(
            "SELECT provider_id FROM notifications WHERE channel = 'sms' AND reason = 'send'"
        )
        assert {r[0] for r in ids} == {m["message_id"] for m in taken}
        settled = deployment.query(
            "SELECT notification_id, count(*) FROM delivery_attempts "
            "WHERE outcome IN ('accepted', 'reconciled') GROUP BY notification_id"
        )
        assert all(n == 1 for _, n in settled)
        # The kill cut attempts short after Vonage had taken them: each was settled at Vonage (its
        # receipt, or reconciliation against its records), none resent.
        accepted = deployment.query(
            "SELECT count(*) FROM delivery_attempts WHERE outcome = 'accepted' AND provider = 'vonage'"
        )[0][0]
        assert accepted < EVENTS
