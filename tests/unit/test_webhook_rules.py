"""The webhook rules: endpoint URLs and filters (hostile input included), retries, pausing, order;
the status event contract and its committed schema file; signatures the library verifies."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from infra.errors import Invalid
from infra.store.status_outbox import message_id
from infra.store.webhooks import new_secret, signing_secrets
from producers.webhooks.sender import encode, signed_headers
from schemas.status_events import (
    STATUS_SCHEMA_VERSION,
    StatusEventType,
    status_event_json_schema,
    validate_status_event,
)
from workers.rules.webhooks import (
    Pending,
    RetryPolicy,
    backoff_seconds,
    check_event_types,
    check_url,
    delivered,
    gives_up,
    next_attempt_at,
    pauses,
    retry_after_seconds,
    sendable,
    wants,
)

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
COMMITTED = (
    Path(__file__).resolve().parents[2] / "schemas" / f"status_event.schema.v{STATUS_SCHEMA_VERSION}.json"
)


# -- endpoint URLs ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://billing.example.com/herald",
        "https://x.example:8443/a?b=c",
        "http://127.0.0.1:8027/h",
        "http://[::1]/h",
        "http://localhost/h",
    ],
)
def test_https_urls_and_plain_http_to_loopback_are_accepted(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://billing.example.com/herald", "plain http:// is only allowed to a loopback host"),
        ("http://10.0.0.1/h", "plain http:// is only allowed to a loopback host"),
        ("ftp://example.com/h", "scheme 'ftp'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("https:///nohost", "no host"),
        ("https://user:pw@example.com/h", "must not carry a user or password"),
        ("https://example.com/\x00h", "control characters"),
        ("https://example.com/a b", "whitespace"),
        ("https://example.com/\x1b[31m", "control characters"),
        ("https://example.com:99999999/h", "not a URL"),
        ("https://example.com/" + "a" * 2000, "at most 2000"),
        ("", "give the endpoint's URL"),
    ],
)
def test_bad_urls_are_refused_naming_what_is_wrong(url: str, said: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_url(url)
    assert refused.value.message.startswith("url:")
    assert said in refused.value.message


def test_event_filters_take_known_types_and_name_unknown_ones() -> None:
    assert check_event_types(None) is None
    assert check_event_types([]) is None
    assert check_event_types(["notification.sent", "notification.sent", "payment.created"]) == [
        "notification.sent",
        "payment.created",
    ]
    with pytest.raises(Invalid, match=r"unknown type 'notification\.bogus'"):
        check_event_types(["notification.sent", "notification.bogus"])
    with pytest.raises(Invalid, match="unknown type 'xxxxx"):
        check_event_types(["x" * 100_000])
    assert wants(None, "payment.created")
    assert wants(["payment.created"], "payment.created")
    assert not wants(["payment.created"], "notification.sent")


# -- retries, pausing, order -----------------------------------------------------------------------
def test_backoff_doubles_from_the_base_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_seconds=5, cap_seconds=3600)
    rand = random.Random(1)
    waits = [backoff_seconds(n, policy, rand) for n in range(1, 14)]
    for n, wait in enumerate(waits, start=1):
        full = min(3600, 5 * 2 ** (n - 1))
        assert full / 2 <= wait <= full
    assert max(waits) <= 3600
    assert backoff_seconds(10_000, policy, rand) <= 3600  # no overflow on a long run


def test_retry_after_is_read_as_seconds_or_a_date_and_honoured_when_later() -> None:
    assert retry_after_seconds("120", NOW) == 120
    assert retry_after_seconds("Mon, 07 Dec 2026 12:01:00 GMT", NOW) == 60
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None
    policy = RetryPolicy(base_seconds=1, cap_seconds=2)
    assert next_attempt_at(1, NOW, 300, policy) == NOW + timedelta(seconds=300)
    assert next_attempt_at(1, NOW, None, policy) <= NOW + timedelta(seconds=1)
    # A Retry-After past the whole retry window is bounded by it.
    assert next_attempt_at(1, NOW, 10**9, policy) == NOW + policy.window


def test_a_delivery_is_given_up_after_the_retry_window_of_3_days() -> None:
    policy = RetryPolicy()
    assert policy.window == timedelta(days=3)
    assert not gives_up(None, NOW, policy)
    assert not gives_up(NOW - timedelta(days=2, hours=23), NOW, policy)
    assert gives_up(NOW - timedelta(days=3), NOW, policy)


def test_an_endpoint_is_paused_at_the_threshold_and_never_with_zero() -> None:
    assert not pauses(49, RetryPolicy(pause_after=50))
    assert pauses(50, RetryPolicy(pause_after=50))
    assert not pauses(10**6, RetryPolicy(pause_after=0))


def test_only_2xx_is_a_delivery() -> None:
    assert [c for c in (None, 199, 200, 204, 299, 301, 400, 500) if delivered(c)] == [200, 204, 299]


def test_only_the_oldest_pending_event_of_each_notification_may_go_and_only_when_due() -> None:
    pending = [
        Pending(1, "ntf_a", True),  # sent
        Pending(2, "ntf_a", True),  # delivered: waits for its sent
        Pending(3, "ntf_b", False),  # not due yet
        Pending(4, "ntf_b", True),  # waits for 3 though due
        Pending(5, "ntf_c", True),
    ]
    assert sendable(pending) == [1, 5]


# -- the contract and the signatures ---------------------------------------------------------------
def test_the_status_event_schema_matches_the_committed_file_of_its_version() -> None:
    assert status_event_json_schema() == json.loads(COMMITTED.read_text()), (
        f"regenerate with `herald schema --status > schemas/{COMMITTED.name}` for a compatible addition; "
        "a breaking change needs a new version and file"
    )


def test_the_schema_names_every_event_type() -> None:
    schema = status_event_json_schema()
    assert set(schema["discriminator"]["mapping"]) == {t.value for t in StatusEventType}


def test_an_event_outside_the_contract_is_refused() -> None:
    with pytest.raises(ValueError, match=r"notification\.bogus"):
        validate_status_event(
            {"type": "notification.bogus", "version": 1, "id": "m", "timestamp": "t", "data": {}}
        )
    with pytest.raises(ValueError, match="data"):
        validate_status_event(
            {"type": "payment.created", "version": 1, "id": "m", "timestamp": "t", "data": {}}
        )


def test_message_ids_are_stable_per_change() -> None:
    assert message_id("sent:ntf_1") == message_id("sent:ntf_1")
    assert message_id("sent:ntf_1") != message_id("delivered:ntf_1")
    assert message_id("sent:ntf_1").startswith("msg_")


def test_every_signing_secret_signs_and_the_library_verifies_each() -> None:
    old, new = new_secret(), new_secret()
    assert old.startswith("whsec_")
    body = encode({"type": "notification.sent", "data": {"x": "ä"}})
    headers = signed_headers("msg_1", body, [new, old], NOW)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    fresh = signed_headers("msg_1", body, [new, old], datetime.now(UTC))
    for secret in (old, new):
        assert Webhook(secret).verify(body, fresh)["data"]["x"] == "ä"
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, fresh)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body + b" ", fresh)


def test_a_rotated_out_secret_signs_until_its_overlap_ends() -> None:
    row = {
        "secrets": [
            {"secret": "whsec_new", "expires_at": None},
            {"secret": "whsec_old", "expires_at": (NOW + timedelta(hours=1)).isoformat()},
        ]
    }
    assert signing_secrets(row, NOW) == ["whsec_new", "whsec_old"]
    assert signing_secrets(row, NOW + timedelta(hours=1)) == ["whsec_new"]
