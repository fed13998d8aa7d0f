"""Correctly signed GoCardless webhooks with careless or hostile bodies: never a 5xx, errors in the
one shape naming the event and field, and the good events beside a bad one still handled."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.bootstrap import Services
from infra.settings import get_settings
from infra.store.gocardless import count_rows, load_payment
from infra.store.tables import gc_webhook_events
from producers.api.app import create_app
from tests.integration.gocardless.conftest import SECRET
from tooling.sandboxes.gocardless import GoCardlessSandbox, sign

LINK = {"herald_org_id": "acme", "herald_customer_id": "C1"}


def _post(client: TestClient, body: bytes | Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/webhooks/gocardless", content=raw, headers={"Webhook-Signature": sign(raw, SECRET)})


def _shaped(answer: Any) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def _submitted_payment(sandbox: GoCardlessSandbox) -> tuple[str, list[dict[str, Any]]]:
    customer = sandbox.add_customer(email="a@example.com", metadata=LINK)["id"]
    mandate = sandbox.add_mandate(customer)["id"]
    metadata = {"herald_org_id": "acme", "herald_invoice_id": "INV-1"}
    payment = str(sandbox.add_payment(mandate, 1000, "EUR", metadata=metadata)["id"])
    return payment, sandbox.set_payment_status(payment, "submitted", webhook=False)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json", "not JSON"),
        (b'{"events": [\xff]}', "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "nests deeper"),
        ([{"id": "EV1"}], "not a JSON object"),
        ("events", "not a JSON object"),
        ({}, "events: missing"),
        ({"events": "EV1"}, "events: not a list"),
        ({"events": {"id": "EV1"}}, "events: not a list"),
        ({"events": [], "meta": _nested(40)}, "nests deeper than 32 levels"),
    ],
)
def test_a_body_that_holds_no_events_is_a_400_that_says_why(
    gc_services: Services, body: Any, says: str
) -> None:
    answer = _post(TestClient(create_app(get_settings())), body)
    assert answer.status_code == 400, answer.text
    error = _shaped(answer)
    assert error["code"] == "bad_request"
    assert says in error["message"]


def test_bad_events_are_named_and_the_good_one_beside_them_is_handled(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    payment, (good,) = _submitted_payment(gc_sandbox)
    depth = get_settings().max_json_depth
    bad: list[tuple[Any, str]] = [
        ("EV000STRING", "events[0]"),
        (12, "events[1]"),
        (None, "events[2]"),
        ([[good]], "events[3]"),
        ({}, "events[4].id"),
        ({"resource_type": "payments", "action": "submitted", "links": {"payment": payment}}, "events[5].id"),
        ({"id": "EV0NOTYPE", "action": "submitted", "links": {}}, "events[6].resource_type"),
        ({"id": "EV0NOLINKS", "resource_type": "payments", "action": "submitted"}, "events[7].links"),
        (
            {"id": "EV0LINKSTR", "resource_type": "payments", "action": "x", "links": payment},
            "events[8].links",
        ),
        (
            {"id": "EV0OBJID", "resource_type": "payments", "action": "x", "links": {"payment": {"$ne": 1}}},
            "events[9].links.payment",
        ),
        ({"id": "EV" + "9" * 300, "resource_type": "payments", "action": "x", "links": {}}, "events[10].id"),
        ({"id": ["EV1"], "resource_type": "payments", "action": "x", "links": {}}, "events[11].id"),
        ({"id": "EV0TYPE", "resource_type": 7, "action": "x", "links": {}}, "events[12].resource_type"),
        (
            {
                "id": "EV0DEEP",
                "resource_type": "payouts",
                "action": "paid",
                "links": {},
                "details": _nested(depth),
            },
            "events[13]",
        ),
        (
            {"id": "EV0ACTION", "resource_type": "payments", "action": None, "links": {"payment": payment}},
            "events[14].action",
        ),
    ]
    events = [event for event, _ in bad] + [good]
    client = TestClient(create_app(get_settings()))
    answer = _post(client, {"events": events})
    assert answer.status_code == 422, answer.text
    error = _shaped(answer)
    assert error["code"] == "invalid_events"
    assert [d["field"] for d in error["details"]] == [field for _, field in bad]
    assert all(d["message"] for d in error["details"])
    assert f"{len(bad)} of {len(events)} events" in error["message"]
    with gc_services.reading() as conn:
        stored = load_payment(conn, payment)
        assert count_rows(conn, gc_webhook_events) == 1  # the good one, and only it
    assert stored is not None
    assert stored["status"] == "submitted"

    again = _post(client, {"events": events})  # GoCardless resends: the same answer, no second effect
    assert again.status_code == 422
    assert _shaped(again)["details"] == error["details"]
    with gc_services.reading() as conn:
        assert count_rows(conn, gc_webhook_events) == 1


def test_an_event_nested_past_what_json_can_parse_is_rejected_alone(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    payment, (good,) = _submitted_payment(gc_sandbox)
    absurd = b'{"id": "EV0ABSURD", "resource_type": "payouts", "action": "paid", "links": {}, "details": '
    absurd += b"[" * 5000 + b"]" * 5000 + b"}"
    body = b'{"events": [' + absurd + b", " + json.dumps(good).encode() + b"]}"
    answer = _post(TestClient(create_app(get_settings())), body)
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in _shaped(answer)["details"]] == ["events[0]"]
    with gc_services.reading() as conn:
        stored = load_payment(conn, payment)
    assert stored is not None
    assert stored["status"] == "submitted"


def test_the_depth_limit_is_the_bodys_and_an_event_may_fill_it(gc_services: Services) -> None:
    depth = get_settings().max_json_depth
    client = TestClient(create_app(get_settings()))

    def payout(event_id: str, nesting: int) -> dict[str, Any]:
        return {
            "id": event_id,
            "resource_type": "payouts",
            "action": "paid",
            "links": {},
            "details": _nested(nesting),
        }

    # body, events, event: three levels above ``details``.
    filled = _post(client, {"events": [payout("EV0FULL", depth - 3)]})
    assert filled.status_code == 204, filled.text
    over = _post(client, {"events": [payout("EV0OVER", depth - 2)]})
    assert over.status_code == 422
    assert _shaped(over)["details"][0]["type"] == "too_deep"


def test_an_event_of_a_type_herald_does_not_read_is_recorded_as_seen(gc_services: Services) -> None:
    event = {"id": "EV0PAYOUT", "resource_type": "payouts", "action": "paid", "links": {"payout": "PO1"}}
    answer = _post(TestClient(create_app(get_settings())), {"events": [event]})
    assert answer.status_code == 204, answer.text
    with gc_services.reading() as conn:
        assert count_rows(conn, gc_webhook_events) == 1


hostile = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
eventish = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=50) | hostile,
        "resource_type": st.sampled_from(["payments", "mandates", "customers", "billing_requests", "payouts"])
        | hostile,
        "action": st.sampled_from(["created", "confirmed", "submitted"]) | hostile,
        "links": st.dictionaries(
            st.sampled_from(["payment", "mandate", "customer", "billing_request"]),
            st.text(max_size=45) | hostile,
            max_size=2,
        )
        | hostile,
        "details": hostile,
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(events=st.lists(eventish | hostile, max_size=4))
def test_any_signed_webhook_is_answered_without_a_5xx_in_the_one_shape(
    gc_sandbox: GoCardlessSandbox, gc_services: Services, events: list[Any]
) -> None:
    answer = _post(TestClient(create_app(get_settings())), {"events": events})
    assert answer.status_code < 500, answer.text
    if answer.status_code != 204:
        _shaped(answer)
