"""``POST /events`` end to end: an event published through the API becomes an SMS at the Twilio sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra import topology
from infra.bootstrap import Services
from infra.store.api_keys import create_key
from infra.store.directory import upsert_customer
from producers.api.app import create_app
from schemas.access import Level
from schemas.directory import CustomerRecord
from schemas.messages import EventPublished
from tests.conftest import RUN_PREFIX, wait_for
from tests.factories import customer, invoice_created
from tests.integration.api.conftest import Api


def test_an_event_posted_to_the_api_is_sent_as_sms_and_bad_ones_are_reported_by_index(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer()), region="FI")
        _, key = create_key(conn, "acme", Level.SEND, "billing")
    client = TestClient(create_app(pipeline.settings, pipeline))
    batch = [
        invoice_created("evt_api_1"),
        {**invoice_created("evt_api_2"), "org_id": "someone-else"},
        {**invoice_created("evt_api_3"), "type": "invoice.deleted"},
    ]
    answer = client.post("/events", json=batch, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 207, answer.text
    report = answer.json()
    assert report["published"] == ["evt_api_1"]
    assert [r["index"] for r in report["rejected"]] == [1, 2]
    assert "unknown event type 'invoice.deleted'" in report["rejected"][1]["reason"]

    def sent() -> list[dict[str, Any]]:
        return [m for m in twilio_sandbox.messages() if m["to"] == "+358401234567"]

    messages = wait_for(sent, timeout=30, what="the SMS of the event posted to the API")
    assert len(messages) == 1
    assert messages[0]["body"].startswith("Lasku 1001")

    one = client.post(
        "/events", json=invoice_created("evt_api_1"), headers={"Authorization": f"Bearer {key}"}
    )
    assert (one.status_code, one.json()) == (202, {"published": ["evt_api_1"], "rejected": []})


# -- hostile and careless input (issue 13) ----------------------------------------------------
# No worker consumes here: the route queue holds exactly what the API published (it answers only
# once RabbitMQ confirmed it), so "nothing of org B was published" is read off the queue itself.


@pytest.fixture
def route_queue(configured_env: dict[str, str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Empties the route queue, then hands a reader of the events published to it since."""
    url = configured_env["HERALD_AMQP_URL"]
    queue = topology.queue_name(RUN_PREFIX, EventPublished.stage)

    def drain() -> list[dict[str, Any]]:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        try:
            channel = connection.channel()
            try:
                channel.queue_declare(queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker:
                return []  # not declared yet: nothing was ever published
            found = []
            while True:
                method, _properties, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    return found
                message = json.loads(body)
                argument = message["args"][0]
                # A run of events travels as one batch message (issue 15): its events, in order.
                found.extend(argument["events"] if message["actor_name"] == "route_events" else [argument])
        finally:
            connection.close()

    drain()
    yield drain
    drain()


def _client(store: Services, **limits: Any) -> TestClient:
    settings = store.settings.model_copy(update={"api_max_body_bytes": 1024 * 1024, **limits})
    return TestClient(create_app(settings, store))


def _post(client: TestClient, key: str, **kwargs: Any) -> Any:
    headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {key}"}
    return client.post("/events", headers=headers, **kwargs)


def test_a_send_key_cannot_publish_another_organisations_event_in_any_shape(
    api: Api, route_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    theirs = {**invoice_created("evt_b1", id="INV-9", customer_id="C9"), "org_id": "other"}
    batch = [
        invoice_created("evt_a1"),
        json.dumps(theirs),  # a JSON string holding an event of org B: parsed later, checked too
        json.dumps(invoice_created("evt_a2")),  # a string-shaped event of the key's own organisation
        {**theirs, "event_id": "evt_b2"},
    ]
    answer = api.call("POST", "/events", api.keys["send"], json=batch)
    assert answer.status_code == 207, answer.text
    report = answer.json()
    assert report["published"] == ["evt_a1", "evt_a2"]
    reason = "org_id: 'other' is not this API key's organisation ('acme')"
    assert report["rejected"] == [{"index": 1, "reason": reason}, {"index": 3, "reason": reason}]
    published = route_queue()
    assert sorted(e["event_id"] for e in published) == ["evt_a1", "evt_a2"]
    assert {e["org_id"] for e in published} == {"acme"}

    alone = api.call("POST", "/events", api.keys["send"], json=[json.dumps(theirs)])
    assert alone.status_code == 422, alone.text
    assert alone.json()["error"]["details"] == [{"index": 0, "reason": reason}]
    assert route_queue() == []


def test_a_batch_over_the_limit_is_refused_whole_naming_the_limit_and_its_setting(
    api: Api, store: Services, route_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    client = _client(store, max_batch_events=3)
    batch = [invoice_created(f"evt_n{i}") for i in range(4)]
    answer = _post(client, api.keys["send"], json=batch)
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["code"] == "batch_too_large"
    assert "a batch of 4 events is over the limit of 3 events" in error["message"]
    assert "HERALD_MAX_BATCH_EVENTS" in error["message"]
    assert route_queue() == []
    assert _post(client, api.keys["send"], json=batch[:3]).status_code == 202
    assert len(route_queue()) == 3


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def test_deeply_nested_items_are_rejected_by_index_and_the_good_ones_beside_them_published(
    api: Api, store: Services, route_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    client = _client(store)
    batch = [
        invoice_created("evt_d1"),
        invoice_created("evt_d2", extra=_nested(260)),
        invoice_created("evt_d3"),
    ]
    answer = _post(client, api.keys["send"], json=batch)
    assert answer.status_code == 207, answer.text
    assert answer.json() == {
        "published": ["evt_d1", "evt_d3"],
        "rejected": [{"index": 1, "reason": "data.invoice.extra: nested deeper than 32 levels"}],
    }
    assert sorted(e["event_id"] for e in route_queue()) == ["evt_d1", "evt_d3"]

    # Thousands of levels: past what a JSON parser recurses through; still per item, never a 5xx.
    good = json.dumps(invoice_created("evt_d4"))
    deep = json.dumps(invoice_created("evt_d5", extra="HOLE")).replace('"HOLE"', "[" * 5000 + "]" * 5000)
    answer = _post(client, api.keys["send"], content=f"[{good}, {deep}]", headers=_JSON)
    assert answer.status_code == 207, answer.text
    assert answer.json()["rejected"] == [
        {"index": 1, "reason": "data.invoice.extra: nested deeper than 32 levels"}
    ]
    assert [e["event_id"] for e in route_queue()] == ["evt_d4"]


_JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ("[" * 200_000, 422, "malformed JSON"),
        ("[" * 100_000 + "]" * 100_000, 422, "nested deeper than 32 levels"),
        ('{"a": ' * 50_000 + "1" + "}" * 50_000, 422, "nested deeper than 32 levels"),
        (b"\xff\xfe[]", 422, "not UTF-8"),
        ('"just a string"', 422, "an event (a JSON object) or a batch"),
        ("42", 422, "an event (a JSON object) or a batch"),
        ("", 422, "malformed JSON"),
        ("[]", 422, "an empty batch"),
    ],
)
def test_a_hostile_body_gets_a_clear_4xx_in_the_error_shape(
    api: Api, store: Services, body: str | bytes, status: int, says: str
) -> None:
    client = _client(store)
    raw = body.encode() if isinstance(body, str) else body
    answer = _post(client, api.keys["send"], content=raw, headers=_JSON)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert says in error["message"] + json.dumps(error["details"])


def test_careless_fields_are_rejected_per_item_naming_the_field_and_the_good_item_published(
    api: Api, route_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    batch = [
        invoice_created("evt_c1", total="1e400"),
        invoice_created("evt_c2", send="yes"),
        invoice_created("evt_c3", number="1001\r\nBcc: victim@example.com"),
        invoice_created("evt_c4", url="javascript:alert(1)"),
        invoice_created("evt_c5"),
    ]
    answer = api.call("POST", "/events", api.keys["send"], json=batch)
    assert answer.status_code == 207, answer.text
    reasons = {r["index"]: r["reason"] for r in answer.json()["rejected"]}
    assert reasons[0].startswith("data.invoice.total: ")
    assert reasons[1].startswith("data.invoice.send: ")
    assert reasons[2] == "data.invoice.number: contains a control character U+000D"
    assert reasons[3].startswith("data.invoice.url: ")
    assert [e["event_id"] for e in route_queue()] == ["evt_c5"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_any_json_body_is_answered_4xx_in_the_error_shape_never_5xx(api: Api, body: Any) -> None:
    answer = api.call("POST", "/events", api.keys["send"], content=json.dumps(body), headers=_JSON)
    assert 400 <= answer.status_code < 500, answer.text
    assert set(answer.json()["error"]) == {"code", "message", "details"}


def test_concurrent_requests_share_one_kept_connection_and_each_is_answered_once_confirmed(
    api: Api, route_queue: Callable[[], list[dict[str, Any]]]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def post(i: int) -> tuple[int, Any]:
        answer = api.call("POST", "/events", api.keys["send"], json=invoice_created(f"evt_c{i}"))
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, range(24)))
    assert answers == [(202, {"published": [f"evt_c{i}"], "rejected": []}) for i in range(24)]
    published = route_queue()  # each answered only once confirmed: all are on the queue already
    assert sorted(e["event_id"] for e in published) == sorted(f"evt_c{i}" for i in range(24))
    context = api.client.app.state.operator_api  # type: ignore[attr-defined]
    publisher = context.publisher
    assert publisher.publisher.connected  # one connection, kept for the next request
    api.call("POST", "/events", api.keys["send"], json=invoice_created("evt_next"))
    assert context.publisher is publisher
    assert [e["event_id"] for e in route_queue()] == ["evt_next"]
