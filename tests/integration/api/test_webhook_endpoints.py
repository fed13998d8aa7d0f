"""Webhook endpoints over the HTTP API: admin keys only, one organisation's endpoints invisible to
another's, and hostile input refused naming what was wrong (never a 5xx, never a secret echoed)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.bootstrap import Services
from tests.integration.api.conftest import Api
from tooling.sandboxes.webhook_receiver import WebhookReceiver


def _add(api: Api, key: str, **body: Any) -> Any:
    return api.call("POST", "/webhook-endpoints", key, json={"url": "https://billing.example.com/h", **body})


def test_only_an_admin_key_manages_endpoints(api: Api) -> None:
    for level in ("view", "send", "edit"):
        answer = _add(api, api.keys[level])
        assert answer.status_code == 403, level
        assert "manage_webhooks" in answer.json()["error"]["message"]
        assert api.call("GET", "/webhook-endpoints", api.keys[level]).status_code == 403
    assert _add(api, None).status_code == 401  # type: ignore[arg-type]
    made = _add(api, api.keys["admin"], events=["notification.sent"])
    assert made.status_code == 201
    body = made.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["notification.sent"]
    listed = api.call("GET", "/webhook-endpoints", api.keys["admin"]).json()["endpoints"]
    assert [e["endpoint_id"] for e in listed] == [body["endpoint_id"]]
    assert body["secret"] not in str(listed)  # never shown again


def test_another_organisations_endpoint_is_404_like_one_that_does_not_exist(api: Api) -> None:
    theirs = _add(api, api.other_admin).json()["endpoint_id"]
    admin = api.keys["admin"]
    calls = [
        ("DELETE", "", None),
        ("POST", "/rotate-secret", {}),
        ("POST", "/test", None),
        ("GET", "/deliveries", None),
        ("POST", "/replay", {"since": "2026-01-01T00:00:00Z"}),
        ("POST", "/resume", None),
    ]
    for method, tail, body in calls:
        for endpoint in (theirs, "whe_0000000000000000"):
            answer = api.call(method, f"/webhook-endpoints/{endpoint}{tail}", admin, json=body)
            assert answer.status_code == 404, (method, tail, answer.text)
            assert answer.json()["error"]["code"] == "not_found"
    assert api.call("GET", "/webhook-endpoints", admin).json()["endpoints"] == []
    # Theirs is untouched: still listed for them, its secret unchanged.
    assert len(api.call("GET", "/webhook-endpoints", api.other_admin).json()["endpoints"]) == 1


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"url": "http://billing.example.com/h"}, "plain http:// is only allowed to a loopback host"),
        ({"url": "https://u:p@billing.example.com/h"}, "must not carry a user or password"),
        ({"url": "https://billing.example.com/\x00"}, "control characters"),
        ({"url": "gopher://x/"}, "scheme 'gopher'"),
        ({"url": "https://e.com/" + "a" * 3000}, "at most 2000"),
        ({"url": "https://e.com/h", "events": ["notification.nope"]}, "unknown type 'notification.nope'"),
    ],
)
def test_bad_endpoints_are_refused_naming_what_is_wrong(api: Api, body: dict[str, Any], said: str) -> None:
    answer = api.call("POST", "/webhook-endpoints", api.keys["admin"], json=body)
    assert answer.status_code == 422, answer.text
    assert said in answer.text


@pytest.mark.parametrize(
    "body",
    [
        {"url": 12},
        {"url": ["https://e.com"]},
        {"url": {"a": {"b": {"c": "d"}}}},
        {"events": "notification.sent", "url": "https://e.com/h"},
        {"url": "https://e.com/h", "events": ["x"] * 51},
        {"url": "https://e.com/" + "a" * 5000},
        {},
    ],
)
def test_wrong_types_and_shapes_are_422_never_5xx(api: Api, body: dict[str, Any]) -> None:
    answer = api.call("POST", "/webhook-endpoints", api.keys["admin"], json=body)
    assert answer.status_code in (413, 422), answer.text
    assert answer.json()["error"]["code"] in ("invalid_request", "payload_too_large", "invalid")


def test_binary_and_odd_endpoint_ids_are_404_or_422(api: Api) -> None:
    admin = api.keys["admin"]
    for endpoint in ("%00", "whe_" + "f" * 500, "..%2F..%2Fetc", "%E2%80%AE", "whe_ZZZZZZZZZZZZZZZZ"):
        answer = api.call("POST", f"/webhook-endpoints/{endpoint}/resume", admin)
        assert answer.status_code in (400, 404, 422), (endpoint, answer.status_code)  # 400: UrlCheck
    made = _add(api, admin).json()["endpoint_id"]
    bad = api.call("POST", f"/webhook-endpoints/{made}/replay", admin, json={"since": "yesterday"})
    assert bad.status_code == 422
    assert "since" in bad.text
    future = api.call(
        "POST", f"/webhook-endpoints/{made}/replay", admin, json={"since": "2999-01-01T00:00:00Z"}
    )
    assert future.status_code == 422
    assert "future" in future.text
    assert api.call("GET", f"/webhook-endpoints/{made}/deliveries?limit=0", admin).status_code == 422
    assert (
        api.call(
            "POST", f"/webhook-endpoints/{made}/rotate-secret", admin, json={"overlap_hours": -1}
        ).status_code
        == 422
    )


def test_rotate_test_and_remove_over_the_api(api: Api, store: Services) -> None:
    admin = api.keys["admin"]
    with WebhookReceiver() as receiver:
        made = _add(api, admin, url=receiver.url + "/h").json()
        receiver.state.secrets = [made["secret"]]
        endpoint = made["endpoint_id"]
        assert api.call("POST", f"/webhook-endpoints/{endpoint}/test", admin).json()["response"] == 204
        rotated = api.call(
            "POST", f"/webhook-endpoints/{endpoint}/rotate-secret", admin, json={"overlap_hours": 2}
        )
        assert rotated.status_code == 200
        receiver.state.secrets = [rotated.json()["secret"]]
        tested = api.call("POST", f"/webhook-endpoints/{endpoint}/test", admin).json()
        assert tested["ok"] is True
        assert api.call("DELETE", f"/webhook-endpoints/{endpoint}", admin).status_code == 200
        assert api.call("GET", "/webhook-endpoints", admin).json()["endpoints"] == []
        assert api.call("POST", f"/webhook-endpoints/{endpoint}/test", admin).status_code == 404
