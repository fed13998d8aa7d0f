"""The organisation's local-time settings over HTTP (``/organisation/local-time``): the key's
organisation only, the same checks as ``herald orgs set``, hostile input answered 422 naming the
field with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest

from infra.bootstrap import Services
from infra.store.organisations import org_settings
from tests.integration.api.conftest import Api

PATH = "/organisation/local-time"


def _error(answer: Any, status: int = 422) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:1000]
    body = answer.json()
    assert set(body) == {"error"}
    return dict(body["error"])


def test_an_edit_key_sets_its_organisations_zone_hour_calendar_and_windows(api: Api, store: Services) -> None:
    body = {
        "timezone": "Europe/Helsinki",
        "reminder_hour": 8,
        "country": "fi",
        "business_days": True,
        "send_windows": {"sms": "08:00-21:00", "payment_thank_you:sms": "any"},
        "collection_grace_days": 5,
    }
    answer = api.call("PATCH", PATH, api.keys["edit"], json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "timezone": "Europe/Helsinki",
        "reminder_hour": 8,
        "country": "FI",
        "subdivision": None,
        "business_days": True,
        "send_windows": {"sms": "08:00-21:00", "payment_thank_you:sms": "any"},
        "collection_grace_days": 5,
    }
    assert api.call("GET", PATH, api.keys["view"]).json() == answer.json()
    with store.reading() as conn:
        assert org_settings(conn, "other")["timezone"] is None  # the other organisation untouched


def test_another_organisations_key_sees_and_changes_only_its_own(api: Api, store: Services) -> None:
    assert api.call("PATCH", PATH, api.keys["edit"], json={"timezone": "Asia/Tokyo"}).status_code == 200
    assert api.call("GET", PATH, api.other_admin).json()["timezone"] is None
    assert api.call("PATCH", PATH, api.other_admin, json={"timezone": "America/New_York"}).status_code == 200
    with store.reading() as conn:
        assert org_settings(conn, "acme")["timezone"] == "Asia/Tokyo"
        assert org_settings(conn, "other")["timezone"] == "America/New_York"


def test_a_view_or_send_key_may_not_change_them(api: Api) -> None:
    for level in ("view", "send"):
        assert api.call("PATCH", PATH, api.keys[level], json={"reminder_hour": 3}).status_code == 403
    assert api.call("PATCH", PATH, None, json={"reminder_hour": 3}).status_code == 401


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../../../etc/passwd"}, "timezone"),
        ({"timezone": "Europe/Helsinki\u0000"}, "timezone"),
        ({"timezone": "Europe/\u202eHelsinki"}, "timezone"),
        ({"timezone": "E" * 1000}, "timezone"),
        ({"timezone": 3}, "timezone"),
        ({"timezone": ["Europe/Helsinki"]}, "timezone"),
        ({"reminder_hour": 24}, "reminder_hour"),
        ({"reminder_hour": 10**30}, "reminder_hour"),
        ({"reminder_hour": "9"}, "reminder_hour"),
        ({"reminder_hour": 9.5}, "reminder_hour"),
        ({"collection_grace_days": 10**9}, "collection_grace_days"),
        ({"country": "XX"}, "country"),
        ({"country": "FI", "subdivision": "??"}, "subdivision"),
        ({"business_days": True}, "business_days"),
        ({"business_days": "true"}, "business_days"),
        ({"send_windows": {"sms": "25:00-26:00"}}, "send window"),
        ({"send_windows": {"sms": "08:00-08:00"}}, "send window"),
        ({"send_windows": {"pigeon": "any"}}, "channel"),
        ({"send_windows": {"sms": {"from": "08:00"}}}, "send_windows"),
        ({"send_windows": {f"k{i}:sms": "any" for i in range(50)}}, "send_windows"),
        ({"send_windows": "sms=any"}, "send_windows"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_hostile_settings_are_refused_naming_the_field_and_nothing_changes(
    api: Api, store: Services, body: dict[str, Any], says: str
) -> None:
    assert api.call("PATCH", PATH, api.keys["edit"], json={"timezone": "Asia/Tokyo"}).status_code == 200
    error = _error(api.call("PATCH", PATH, api.keys["edit"], json={"reminder_hour": 7, **body}))
    assert says in str(error)
    with store.reading() as conn:
        settings = org_settings(conn, "acme")
    assert (settings["timezone"], settings["reminder_hour"]) == ("Asia/Tokyo", None)


def test_a_body_that_is_not_json_or_binary_is_refused_in_the_one_error_shape(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    for raw, status in ((b"\xff\xfe\x00", 400), (b"{", 422), (b"[]", 422), (b"null", 422)):
        answer = api.call("PATCH", PATH, api.keys["edit"], content=raw, headers=headers)
        assert _error(answer, status)["code"] in {"bad_request", "invalid_request"}
