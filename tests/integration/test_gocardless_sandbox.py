"""The GoCardless sandbox, driven by the official ``gocardless-pro`` client plus the admin helpers."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import gocardless_pro
import pytest
from gocardless_pro import errors, webhooks

from tests.conftest import wait_for
from tests.integration.local_http import PostRecorder, recording, served, serving
from tooling.sandboxes.gocardless import GoCardlessConfig, GoCardlessSandbox

TOKEN = "sandbox_test_token"
SECRET = "sandbox-webhook-secret"


class Receiver(PostRecorder):
    """A local webhook endpoint: records each POST's raw body and signature, answers 204 (or the
    next of ``answers`` while any are left)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[int] = []
        self.url = f"{self.base}/webhooks/gocardless"

    def record(self, request: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
        return {"body": body, "signature": request.headers.get("Webhook-Signature")}

    def answer(self) -> int:
        return self.answers.pop(0) if self.answers else 204

    def events(self) -> list[dict[str, Any]]:
        return [event for post in self.posts for event in json.loads(post["body"])["events"]]

    def actions(self) -> list[tuple[str, str]]:
        return [(e["resource_type"], e["action"]) for e in self.events()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with recording(Receiver()) as recorder:
        yield recorder


@pytest.fixture
def sandbox(receiver: Receiver) -> Iterator[GoCardlessSandbox]:
    config = GoCardlessConfig(TOKEN, SECRET, receiver.url, webhook_retry_seconds=0.05)
    with GoCardlessSandbox(config) as running:
        yield running


@pytest.fixture
def client(sandbox: GoCardlessSandbox) -> gocardless_pro.Client:
    return gocardless_pro.Client(access_token=TOKEN, base_url=sandbox.url)


def _mandate(sandbox: GoCardlessSandbox, status: str = "active") -> str:
    customer = sandbox.add_customer(email="payer@example.com", given_name="Payer", family_name="One")
    return str(sandbox.add_mandate(customer["id"], status)["id"])


def _post(url: str, body: dict[str, Any], token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(  # noqa: S310 - a local http URL, checked above
        url, data=json.dumps(body).encode(), headers={"Authorization": f"Bearer {token}"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_wrong_token_raises_the_clients_authentication_error(sandbox: GoCardlessSandbox) -> None:
    stranger = gocardless_pro.Client(access_token="not-the-token", base_url=sandbox.url)
    with pytest.raises(errors.AuthenticationError) as raised:
        stranger.customers.list()
    assert raised.value.code == 401
    assert raised.value.type == "invalid_api_usage"
    assert raised.value.errors[0]["reason"] == "access_token_not_found"
    assert raised.value.request_id
    assert raised.value.documentation_url.startswith("https://developer.gocardless.com/")


def test_customers_are_created_fetched_and_listed_in_gocardless_shape(client: gocardless_pro.Client) -> None:
    made = client.customers.create(
        params={
            "email": "aino@example.fi",
            "given_name": "Aino",
            "family_name": "Virtanen",
            "metadata": {"c": "1"},
        }
    )
    assert made.id.startswith("CU")
    assert len(made.id) == 14
    assert made.created_at.endswith("Z")
    fetched = client.customers.get(made.id)
    assert (fetched.email, fetched.given_name, fetched.metadata) == ("aino@example.fi", "Aino", {"c": "1"})
    assert [c.id for c in client.customers.list().records] == [made.id]

    with pytest.raises(errors.InvalidApiUsageError) as missing:
        client.customers.get("CU000000000000")
    assert missing.value.code == 404
    with pytest.raises(errors.ValidationFailedError) as invalid:
        client.customers.create(params={"email": "no-at-sign"})
    assert invalid.value.errors[0]["field"] == "email"


def test_all_walks_250_customers_page_by_page_and_cursors_go_both_ways(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    seeded = sandbox.add_customers(245, mandate_status=None)
    created = [client.customers.create(params={"email": f"api{n}@example.com"}) for n in range(5)]
    expected = [c["id"] for c in seeded] + [c.id for c in created]

    walked = [c.id for c in client.customers.all(params={"limit": 100})]
    assert walked == expected

    first = client.customers.list(params={"limit": 100})
    assert (first.before, first.after) == (None, expected[99])
    second = client.customers.list(params={"limit": 100, "after": first.after})
    assert [c.id for c in second.records] == expected[100:200]
    assert second.before == expected[100]
    back = client.customers.list(params={"limit": 100, "before": second.before})
    assert [c.id for c in back.records] == expected[:100]
    last = client.customers.list(params={"limit": 100, "after": second.after})
    assert len(last.records) == 50
    assert last.after is None
    assert last.api_response.body["meta"]["limit"] == 100


def test_mandates_list_filters_by_customer_and_status(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    active = sandbox.add_customers(3)
    sandbox.add_customers(2, mandate_status="cancelled", start=4)
    mine = client.mandates.list(params={"customer": active[1]["id"]}).records
    assert len(mine) == 1
    assert mine[0].links.customer == active[1]["id"]
    assert mine[0].id.startswith("MD")
    assert client.mandates.get(mine[0].id).status == "active"
    assert len(list(client.mandates.all(params={"status": "active"}))) == 3
    assert len(list(client.mandates.all(params={"status": "cancelled,failed"}))) == 2


def test_a_repeated_idempotency_key_makes_one_payment_and_the_client_returns_it(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    mandate = _mandate(sandbox)
    params = {
        "amount": 123450,
        "currency": "GBP",
        "description": "Invoice 1001",
        "metadata": {"invoice_id": "INV-1"},
        "links": {"mandate": mandate},
    }
    first = client.payments.create(params=params, headers={"Idempotency-Key": "INV-1"})
    again = client.payments.create(params=params, headers={"Idempotency-Key": "INV-1"})
    assert first.id.startswith("PM")
    assert again.id == first.id
    assert (again.amount, again.currency, again.status) == (123450, "GBP", "pending_submission")
    assert again.metadata == {"invoice_id": "INV-1"}
    assert [p.id for p in client.payments.list(params={"mandate": mandate}).records] == [first.id]

    strict = gocardless_pro.Client(
        access_token=TOKEN, base_url=sandbox.url, raise_on_idempotency_conflict=True
    )
    with pytest.raises(errors.IdempotentCreationConflictError) as conflict:
        strict.payments.create(params=params, headers={"Idempotency-Key": "INV-1"})
    assert conflict.value.code == 409
    assert conflict.value.type == "invalid_state"
    assert conflict.value.conflicting_resource_id == first.id

    # Eight racing creates with one key: one payment, and every caller gets it back.
    got: list[str] = []

    def create() -> None:
        got.append(client.payments.create(params=params, headers={"Idempotency-Key": "INV-2"}).id)

    racers = [threading.Thread(target=create) for _ in range(8)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert len(set(got)) == 1
    assert len(got) == 8
    assert len(sandbox.records("payments")) == 2


def test_payments_list_filters_by_customer_and_status(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    customers = sandbox.add_customers(2)
    mandates = [m["id"] for m in sandbox.records("mandates")]
    ours = [sandbox.add_payment(mandates[0], 100 * n)["id"] for n in range(1, 4)]
    sandbox.add_payment(mandates[1], 999, status="paid_out")
    found = client.payments.list(params={"customer": customers[0]["id"]}).records
    assert sorted(p.id for p in found) == sorted(ours)
    assert [p.amount for p in client.payments.list(params={"status": "paid_out"}).records] == [999]


def test_cancel_works_only_while_pending_submission(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    mandate = _mandate(sandbox)
    pending = client.payments.create(params={"amount": 500, "currency": "GBP", "links": {"mandate": mandate}})
    assert client.payments.cancel(pending.id).status == "cancelled"

    submitted = client.payments.create(
        params={"amount": 700, "currency": "GBP", "links": {"mandate": mandate}}
    )
    sandbox.set_payment_status(submitted.id, "submitted")
    with pytest.raises(errors.InvalidStateError) as refused:
        client.payments.cancel(submitted.id, params={"metadata": {"why": "late"}})
    assert refused.value.code == 422
    assert refused.value.errors[0]["reason"] == "cancellation_failed"
    assert client.payments.get(submitted.id).status == "submitted"


def test_payments_need_an_amount_and_a_mandate_that_is_not_cancelled(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    with pytest.raises(errors.ValidationFailedError) as no_amount:
        client.payments.create(params={"currency": "GBP", "links": {"mandate": _mandate(sandbox)}})
    assert no_amount.value.errors[0]["field"] == "amount"
    with pytest.raises(errors.InvalidStateError) as inactive:
        client.payments.create(
            params={"amount": 1, "currency": "GBP", "links": {"mandate": _mandate(sandbox, "cancelled")}}
        )
    assert inactive.value.errors[0]["reason"] == "mandate_is_inactive"


def test_a_completed_billing_request_flow_makes_an_active_mandate_and_a_signed_webhook(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client, receiver: Receiver
) -> None:
    request = client.billing_requests.create(
        params={"mandate_request": {"currency": "GBP", "scheme": "bacs"}}
    )
    assert request.id.startswith("BRQ")
    assert request.status == "pending"
    flow = client.billing_request_flows.create(
        params={"redirect_uri": "https://billing.example/done", "links": {"billing_request": request.id}}
    )
    assert flow.id.startswith("BRF")
    assert flow.authorisation_url == f"{sandbox.url}/flow/{flow.id}"

    status, answer = _post(f"{sandbox.url}/sandbox/billing_request_flows/{flow.id}/complete", {})
    assert status == 200
    fulfilled = client.billing_requests.get(request.id)
    assert fulfilled.status == "fulfilled"
    mandate = client.mandates.get(fulfilled.links.mandate_request_mandate)
    assert mandate.status == "active"
    assert (
        mandate.links.customer == fulfilled.links.customer == answer["billing_requests"]["links"]["customer"]
    )

    post = wait_for(
        lambda: next(
            (p for p in receiver.posts if b"billing_requests" in p["body"] and b"fulfilled" in p["body"]),
            None,
        ),
        what="the fulfilled webhook",
    )
    expected = hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(post["signature"], expected)
    assert not hmac.compare_digest(
        post["signature"], hmac.new(b"wrong", post["body"], hashlib.sha256).hexdigest()
    )
    parsed = webhooks.parse_with_meta(post["body"], SECRET, post["signature"])
    assert parsed.webhook_id.startswith("WB")
    assert [(e.resource_type, e.action) for e in parsed.events] == [
        ("billing_requests", "fulfilled"),
        ("mandates", "created"),
        ("mandates", "active"),
    ]
    fulfilled_event = parsed.events[0]
    assert fulfilled_event.id.startswith("EV")
    assert fulfilled_event.links.mandate_request_mandate == mandate.id
    assert parsed.events[2].details.cause == "mandate_activated"
    with pytest.raises(errors.InvalidSignatureError):
        webhooks.parse(post["body"], "not-the-secret", post["signature"])

    again, refusal = _post(f"{sandbox.url}/sandbox/billing_request_flows/{flow.id}/complete", {})
    assert again == 422
    assert refusal["error"]["type"] == "invalid_state"


def test_the_flow_page_completes_for_the_payer_and_redirects(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    customer = client.customers.create(params={"email": "known@example.com"})
    request = client.billing_requests.create(
        params={
            "mandate_request": {"currency": "EUR", "scheme": "sepa_core"},
            "links": {"customer": customer.id},
        }
    )
    flow = client.billing_request_flows.create(
        params={"redirect_uri": "http://127.0.0.1:9/done", "links": {"billing_request": request.id}}
    )
    with urllib.request.urlopen(flow.authorisation_url, timeout=5) as page:  # noqa: S310 - the sandbox's URL
        assert b"<form" in page.read()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    with pytest.raises(urllib.error.HTTPError) as redirected:
        urllib.request.build_opener(NoRedirect).open(flow.authorisation_url, data=b"", timeout=5)
    assert redirected.value.code == 303
    assert redirected.value.headers["Location"] == "http://127.0.0.1:9/done"
    mandates = client.mandates.list(params={"customer": customer.id}).records
    assert [(m.status, m.scheme) for m in mandates] == [("active", "sepa_core")]


def test_batched_duplicated_and_reversed_webhooks(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client, receiver: Receiver
) -> None:
    payment = sandbox.add_payment(_mandate(sandbox), 2500)["id"]
    submitted = sandbox.set_payment_status(payment, "submitted", webhook=False)
    confirmed = sandbox.set_payment_status(payment, "confirmed", webhook=False)
    assert receiver.posts == []
    assert client.payments.get(payment).status == "confirmed"

    webhook = sandbox.send_webhook(submitted + confirmed)
    wait_for(lambda: len(receiver.posts) == 1, what="one webhook")
    body = json.loads(receiver.posts[0]["body"])
    assert body["meta"]["webhook_id"] == webhook
    assert [(e["action"], e["links"]["payment"]) for e in body["events"]] == [
        ("submitted", payment),
        ("confirmed", payment),
    ]
    assert all(e["id"].startswith("EV") and e["created_at"].endswith("Z") for e in body["events"])

    sandbox.send_webhook(submitted + confirmed, times=2, reverse=True)
    wait_for(lambda: len(receiver.posts) == 3, what="the same webhook twice")
    assert receiver.posts[1]["body"] == receiver.posts[2]["body"]
    assert [e["action"] for e in json.loads(receiver.posts[1]["body"])["events"]] == [
        "confirmed",
        "submitted",
    ]

    listed = client.events.list(params={"payment": payment, "resource_type": "payments"}).records
    assert [e.action for e in listed] == ["submitted", "confirmed"]


def test_a_failing_receiver_gets_the_same_webhook_again(
    sandbox: GoCardlessSandbox, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    mandate = _mandate(sandbox)
    sandbox.set_mandate_status(mandate, "cancelled")
    wait_for(lambda: len(receiver.posts) == 3, what="two retries")
    assert receiver.posts[0]["body"] == receiver.posts[2]["body"]
    assert [d["status"] for d in sandbox.webhook_deliveries()] == [500, 503, 204]
    assert receiver.actions() == [("mandates", "cancelled")] * 3


def test_a_cancelled_mandate_cancels_its_unsubmitted_payments(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client, receiver: Receiver
) -> None:
    mandate = _mandate(sandbox)
    pending = sandbox.add_payment(mandate)["id"]
    submitted = sandbox.add_payment(mandate, status="submitted")["id"]
    assert client.mandates.cancel(mandate).status == "cancelled"
    assert client.payments.get(pending).status == "cancelled"
    assert client.payments.get(submitted).status == "submitted"
    wait_for(lambda: len(receiver.events()) == 2, what="mandate and payment cancelled")
    assert receiver.events()[1]["details"]["cause"] == "mandate_cancelled"
    status, refusal = _post(f"{sandbox.url}/sandbox/payments/{submitted}/status", {"status": "paid_out"})
    assert status == 422
    assert refusal["error"]["errors"][0]["reason"] == "invalid_state_transition"


def test_seeded_bad_records_come_back_as_they_are(
    sandbox: GoCardlessSandbox, client: gocardless_pro.Client
) -> None:
    seeded = sandbox.add_customers(5, bad_emails=2)
    emails = [c.email for c in client.customers.all()]
    assert emails[:2] == ["customer1.example.com", "customer2.example.com"]
    assert all("@" in e for e in emails[2:])
    sandbox.patch(seeded[4]["id"], email=None, family_name="")
    assert client.customers.get(seeded[4]["id"]).email is None


def test_the_api_wants_the_version_header_and_known_paths(sandbox: GoCardlessSandbox) -> None:
    request = urllib.request.Request(  # noqa: S310 - the sandbox's local URL
        f"{sandbox.url}/customers", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310
    assert missing.value.code == 400
    assert json.loads(missing.value.read())["error"]["errors"][0]["reason"] == "missing_version_header"
    status, unknown = _post(f"{sandbox.url}/nothing-here", {})
    assert status == 404
    assert unknown["error"]["errors"][0]["reason"] == "path_not_found"


@pytest.mark.timeout(60)
def test_serve_prints_its_url_answers_and_stops_on_sigterm() -> None:
    with serving("gocardless", "GoCardlessConfig", TOKEN, SECRET) as url:
        remote = gocardless_pro.Client(access_token=TOKEN, base_url=url)
        assert remote.customers.create(params={"email": "a@example.com"}).id.startswith("CU")


@pytest.mark.timeout(60)
def test_the_cli_reads_its_settings_and_sends_webhooks_under_the_public_url(
    receiver: Receiver, tmp_path: Path
) -> None:
    herald = str(Path(sys.executable).with_name("herald"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_GOCARDLESS")}
    refused = subprocess.run(
        [herald, "sandbox", "gocardless", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "HERALD_GOCARDLESS_ACCESS_TOKEN" in refused.stderr

    env |= {
        "HERALD_GOCARDLESS_ACCESS_TOKEN": TOKEN,
        "HERALD_GOCARDLESS_WEBHOOK_SECRET": SECRET,
        "HERALD_PUBLIC_URL": receiver.url.removesuffix("/webhooks/gocardless") + "/",
    }
    command = [herald, "sandbox", "gocardless", "--port", "0"]
    with served(command, env=env, cwd=tmp_path) as stdout:
        url = stdout.readline().strip().rsplit(" ", 1)[1]
        assert stdout.readline().strip() == f"webhooks go to {receiver.url}"
        remote = gocardless_pro.Client(access_token=TOKEN, base_url=url)
        request = remote.billing_requests.create(params={"mandate_request": {"currency": "GBP"}})
        flow = remote.billing_request_flows.create(params={"links": {"billing_request": request.id}})
        assert _post(f"{url}/sandbox/billing_request_flows/{flow.id}/complete", {})[0] == 200
        wait_for(lambda: ("mandates", "active") in receiver.actions(), what="the webhook from the CLI")
        post = receiver.posts[-1]
        webhooks.parse(post["body"], SECRET, post["signature"])  # raises when the signature is wrong


def test_a_flow_key_used_twice_answers_409_and_a_flow_cannot_be_fetched(
    sandbox: GoCardlessSandbox,
) -> None:
    """As at GoCardless: a repeated Idempotency-Key on a flow is a 409 idempotent_creation_conflict
    naming the first flow, and there is no GET for a flow (the client has none either)."""
    strict = gocardless_pro.Client(
        access_token=TOKEN, base_url=sandbox.url, raise_on_idempotency_conflict=True
    )
    request = strict.billing_requests.create(params={"mandate_request": {"currency": "EUR"}})
    params = {"links": {"billing_request": request.id}}
    flow = strict.billing_request_flows.create(params=params, headers={"Idempotency-Key": "k1"})
    with pytest.raises(errors.IdempotentCreationConflictError) as conflict:
        strict.billing_request_flows.create(params=params, headers={"Idempotency-Key": "k1"})
    assert conflict.value.conflicting_resource_id == flow.id
    assert not hasattr(strict.billing_request_flows, "get")
    fetch = urllib.request.Request(  # noqa: S310 - the sandbox's local URL
        f"{sandbox.url}/billing_request_flows/{flow.id}",
        headers={"Authorization": f"Bearer {TOKEN}", "GoCardless-Version": "2015-07-06"},
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(fetch, timeout=5)  # noqa: S310
    assert missing.value.code == 404
    assert json.loads(missing.value.read())["error"]["errors"][0]["reason"] == "path_not_found"
    another = strict.billing_request_flows.create(params=params)  # a second flow for it: allowed
    assert another.id != flow.id
