"""The pure rules for what providers send: Twilio status callbacks, GoCardless webhook bodies and
events, and the timeline's word for a status report that changed nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from infra.errors import WebhookRejected
from infra.store.notifications import ignored_detail
from producers.api.callbacks import read_status_callback
from producers.gocardless.webhooks import event_problem, read_events
from schemas.messages import is_notification_id
from schemas.notifications import Status

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NID = "ntf_" + "0a" * 16


@pytest.mark.parametrize("nid", ["ntf_0\n", "ntf_", "NTF_0", "ntf_" + "0" * 37, "ntf_0 ", "ntf_\u0660"])
def test_only_a_notification_ids_exact_shape_passes(nid: str) -> None:
    assert not is_notification_id(nid)
    assert is_notification_id(NID)


def test_a_callback_becomes_a_report_and_unusable_fields_are_named_not_fatal() -> None:
    good = read_status_callback(
        NID, {"MessageStatus": "failed", "MessageSid": "SM1", "ErrorCode": "30003"}, NOW
    )
    assert good.report is not None
    assert (good.report.status, good.report.provider_id, good.report.error_code) == (
        Status.FAILED,
        "SM1",
        30003,
    )
    odd = read_status_callback(NID, {"MessageStatus": "failed", "MessageSid": "S M", "ErrorCode": "3e4"}, NOW)
    assert odd.report is not None
    assert (odd.report.provider_id, odd.report.error_code) == (None, None)
    assert odd.report.detail == (
        "dropped: MessageSid 'S M' is not a Twilio SID; ErrorCode '3e4' is not a Twilio error code"
    )
    assert read_status_callback(NID, {"MessageStatus": "queued"}, NOW).report is None
    assert (
        read_status_callback("ntf_x", {"MessageStatus": "sent"}, NOW).ignored
        == "unknown notification 'ntf_x'"
    )


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "id": "EV1",
        "resource_type": "payments",
        "action": "confirmed",
        "links": {"payment": "PM1"},
        **fields,
    }


@pytest.mark.parametrize(
    ("event", "field", "kind"),
    [
        ("EV1", "events[0]", "not_an_object"),
        (_event(id=None), "events[0].id", "missing"),
        (_event(id="EV 1"), "events[0].id", "invalid"),
        (_event(resource_type=["payments"]), "events[0].resource_type", "invalid"),
        (_event(action="a" * 61), "events[0].action", "invalid"),
        (_event(links=None), "events[0].links", "missing"),
        (_event(links=[]), "events[0].links", "invalid"),
        (_event(links={}), "events[0].links.payment", "missing"),
        (_event(links={"payment": "../PM1"}), "events[0].links.payment", "invalid"),
        (_event(details={"a": {"a": {"a": {}}}}), "events[0]", "too_deep"),
    ],
)
def test_each_malformed_event_is_named_by_index_and_field(event: Any, field: str, kind: str) -> None:
    problem = event_problem(event, 0, max_depth=4)  # 4: the body, events, the event, one more
    assert problem is not None
    assert (problem["field"], problem["type"]) == (field, kind)
    assert problem["message"]


def test_a_well_formed_event_has_no_problem_even_of_a_type_herald_does_not_read() -> None:
    assert event_problem(_event(), 3, max_depth=32) is None
    assert (
        event_problem({"id": "EV2", "resource_type": "payouts", "action": "paid", "links": {}}, 0, 32) is None
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff", "the body is not JSON"),
        (b"[]", "the body is not a JSON object (a list)"),
        (b"{}", "events: missing"),
        (b'{"events": null}', "events: not a list (null)"),
        (b'{"events": [], "meta": ' + b"[" * 3000 + b"]" * 3000 + b"}", "nests deeper than 32 levels"),
    ],
)
def test_a_body_without_a_list_of_events_is_refused_saying_why(body: bytes, message: str) -> None:
    with pytest.raises(WebhookRejected) as refused:
        read_events(body, 32)
    assert message in refused.value.message


def test_an_absurdly_deep_event_leaves_the_others_readable() -> None:
    body = b'{"events": [' + b"[" * 3000 + b"]" * 3000 + b', {"id": "EV1"}]}'
    events = read_events(body, 32)
    assert events[1] == {"id": "EV1"}
    assert event_problem(events[0], 0, 32) is not None


def test_a_report_that_changed_nothing_says_so_before_its_own_detail() -> None:
    assert ignored_detail(Status.DELIVERED, None) == "ignored: already delivered"
    assert ignored_detail(Status.FAILED, "30003") == "ignored: already failed; 30003"
