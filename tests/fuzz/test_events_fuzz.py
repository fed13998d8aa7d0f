"""Fuzzing ``POST /events`` and ``parse_event``: hostile batches never cost a 5xx, each bad item is
reported with its index, every good item is published (confirmed), and nothing of another
organisation is ever published, whatever shape it came in."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from infra.errors import InvalidEvent
from schemas.validation import parse_event
from tests.fuzz import strategies as hostile
from tests.fuzz.conftest import ACME, FUZZ, World, assert_answered_well

pytestmark = pytest.mark.integration

JSON_HEADERS = {"Content-Type": "application/json"}


def _rejected(answer: Any) -> list[dict[str, Any]]:
    body = answer.json()
    return body["rejected"] if answer.status_code in (202, 207) else body["error"]["details"]


@pytest.mark.stores("sqlite")
@settings(FUZZ, max_examples=60)
@given(batch=hostile.event_batch())
def test_a_hostile_batch_publishes_exactly_the_good_events_and_reports_each_bad_one_by_index(
    live: World, batch: list[hostile.Item]
) -> None:
    for index, item in enumerate(batch):
        note(f"item {index}: {item!r}")
    answer = live.call("POST", "/events", "send", content=hostile.encode_batch(batch), headers=JSON_HEADERS)
    published = live.drain_events()
    # Judged on what reached the queue first: nothing of another organisation, whatever the answer.
    strangers = sorted({str(e.get("org_id")) for e in published} - {ACME})
    assert not strangers, f"events of {strangers} were published with acme's key"
    assert_answered_well(answer)
    assert answer.status_code in (202, 207, 422), answer.text[:300]

    rejected = _rejected(answer)
    by_index = {r["index"]: r["reason"] for r in rejected}
    assert all(isinstance(r["reason"], str) and r["reason"] for r in rejected), rejected
    ids = [e["event_id"] for e in published]
    report = answer.json().get("published", [])
    assert sorted(ids) == sorted(report), f"the queue holds {ids}, the answer says {report}"
    for index, item in enumerate(batch):
        what = f"item {index} ({item.verdict}: {item.why})"
        if item.verdict == "good":
            assert index not in by_index, f"{what} was rejected: {by_index.get(index)}"
            assert item.event_id in ids, f"{what} was not published"
        elif item.verdict == "bad":
            assert index in by_index, f"{what} was not reported as rejected"
        else:
            assert (index in by_index) != (item.event_id in ids), f"{what} neither published nor rejected"
    assert len(ids) + len(by_index) == len(batch), f"{len(batch)} items, {len(ids)} published, {by_index}"


@pytest.mark.stores("sqlite")
@settings(FUZZ, max_examples=25)
@given(
    body=st.one_of(
        hostile.deep_json_text().map(str.encode),
        st.binary(max_size=300),
        st.sampled_from(
            [b"\xff\xfe[]", b'[{"type": "invoice.created\xff"}]', b"[NaN]", b"[1e400]", b"", b"[]", b"null"]
        ),
        hostile.anything.map(lambda v: json.dumps(v).encode()),
    ),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
)
def test_a_hostile_request_body_is_a_clean_4xx_and_publishes_nothing_of_another_organisation(
    live: World, body: bytes, content_type: str
) -> None:
    answer = live.call("POST", "/events", "send", content=body, headers={"Content-Type": content_type})
    published = live.drain_events()
    assert {e.get("org_id") for e in published} <= {ACME}
    assert_answered_well(answer)


#: ``parse_event``'s bounds as the api and ``herald publish`` pass them (the depth bound where it takes one).
_BOUNDS: dict[str, Any] = {"max_bytes": 64 * 1024}
if "max_depth" in inspect.signature(parse_event).parameters:
    _BOUNDS["max_depth"] = 32


@settings(FUZZ, max_examples=400)
@given(raw=hostile.raw_event_input, bounded=st.booleans())
def test_parse_event_on_hostile_input_raises_nothing_but_invalid_event(raw: Any, bounded: bool) -> None:
    try:
        parse_event(raw, **(_BOUNDS if bounded else {}))
    except InvalidEvent as exc:
        reason = exc.reason
    except Exception as exc:  # the property: any other exception is the failure
        pytest.fail(f"parse_event raised {type(exc).__name__}: {str(exc)[:200]}")
    else:
        return
    assert reason.strip(), "a rejection must say why"
