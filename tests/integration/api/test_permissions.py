"""Each level on each endpoint: allowed, or 403 in the error shape; and 401 without a valid key."""

from __future__ import annotations

from typing import Any

import pytest

from infra.store.api_keys import revoke_key
from infra.store.tables import api_keys
from tests.integration.api.conftest import Api

SOURCE = {"source": "Lasku {{ invoice.number }}"}
NOTIFY = {"invoice_id": "INV-1", "channel": "sms"}
P1 = {"contact_id": "P1", "primary": True, "name": "Aino", "mobile": "+358401234567", "locale": "fi"}
CUSTOMER = {"name": "Acme Oy (renamed)", "contacts": [P1]}

#: (method, path, body, the levels that may call it). Send and edit are siblings; admin has all.
MATRIX: list[tuple[str, str, Any, set[str]]] = [
    ("POST", "/events", {"org_id": "elsewhere"}, {"send", "admin"}),
    ("GET", "/contacts/P1", None, {"view", "send", "edit", "admin"}),
    ("PUT", "/customers/C1", CUSTOMER, {"edit", "admin"}),
    ("PUT", "/contacts/P1/toggles", {"sms": "keep"}, {"edit", "admin"}),
    ("POST", "/toggles/bulk", {"contacts": ["P1"], "dry_run": True}, {"edit", "admin"}),
    ("GET", "/templates", None, {"view", "send", "edit", "admin"}),
    ("GET", "/templates/invoice/sms/fi", None, {"view", "send", "edit", "admin"}),
    ("PUT", "/templates/invoice/sms/fi/body", SOURCE, {"edit", "admin"}),
    ("POST", "/templates/invoice/sms/enable", None, {"edit", "admin"}),
    ("POST", "/templates/invoice/sms/disable", None, {"edit", "admin"}),
    ("POST", "/notify/preview", NOTIFY, {"view", "send", "edit", "admin"}),
    ("POST", "/notify/send", {**NOTIFY, "preview": "000000000000"}, {"send", "admin"}),
    ("GET", "/invoices/INV-1/history", None, {"view", "send", "edit", "admin"}),
    ("GET", "/contacts/P1/activity", None, {"view", "send", "edit", "admin"}),
    ("GET", "/invoices/INV-1/history?reveal=true", None, {"admin"}),
    ("GET", "/contacts/P1/activity?reveal=true", None, {"admin"}),
    ("GET", "/contacts/P1?reveal=true", None, {"admin"}),
    ("POST", "/payments/PM0001/cancel", None, {"send", "admin"}),
]


def test_every_level_on_every_endpoint_is_allowed_or_403(api: Api) -> None:
    wrong: list[str] = []
    for method, path, body, allowed in MATRIX:
        for level, key in api.keys.items():
            answer = api.call(method, path, key, json=body)
            if level in allowed and answer.status_code in (401, 403):
                wrong.append(f"{level} {method} {path}: {answer.status_code} {answer.text}")
            refused = answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
            if level not in allowed and not refused:
                wrong.append(f"{level} {method} {path}: expected 403, got {answer.status_code} {answer.text}")
    assert wrong == []


def test_what_the_allowed_calls_answer(api: Api) -> None:
    edit, send, view = api.keys["edit"], api.keys["send"], api.keys["view"]
    assert api.call("GET", "/contacts/P1", view).json()["mobile"] != "+358401234567"  # masked
    assert api.call("GET", "/contacts/P1?reveal=true", api.keys["admin"]).json()["mobile"] == "+358401234567"
    assert api.call("PUT", "/customers/C1", edit, json=CUSTOMER).json()["result"] == "updated"
    toggled = api.call("PUT", "/contacts/P1/toggles", edit, json={"sms": "disable"}).json()
    assert (toggled["result"], toggled["changes"]) == ("changed", ["sms: on → off"])
    bulk = api.call("POST", "/toggles/bulk", edit, json={"customer_id": "C1", "sms": "enable"}).json()
    assert (bulk["changed"], bulk["contacts"][0]["contact_id"]) == (1, "P1")
    saved = api.call("PUT", "/templates/invoice/sms/fi/body", edit, json=SOURCE)
    assert (saved.status_code, saved.json()) == (200, {"saved": "invoice.sms.fi"})
    shown = api.call("GET", "/templates/invoice/sms/fi", view).json()
    assert shown["parts"] == {"body": SOURCE["source"]}
    api.call("POST", "/templates/invoice/sms/disable", edit)
    listed = api.call("GET", "/templates", view).json()["templates"]
    invoice_fi = next(t for t in listed if (t["kind"], t["channel"], t["locale"]) == ("invoice", "sms", "fi"))
    assert invoice_fi == {**invoice_fi, "source": "organisation", "enabled": False}
    api.call("POST", "/templates/invoice/sms/enable", edit)
    preview = api.call("POST", "/notify/preview", view, json=NOTIFY).json()
    assert preview["recipients"][0]["text"] == "Lasku 1001"
    stale = api.call("POST", "/notify/send", send, json={**NOTIFY, "preview": "000000000000"})
    assert stale.status_code == 409
    assert "changed since preview 000000000000" in stale.json()["error"]["message"]
    history = api.call("GET", "/invoices/INV-1/history", view).json()
    assert [e["event_id"] for e in history["events"]] == ["evt_INV-1"]
    assert api.call("GET", "/contacts/P1/activity", view).json()["contact_id"] == "P1"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "hk_not-bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer hk_unknown"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "no-scheme", "basic", "unknown", "empty"],
)
def test_a_missing_or_invalid_key_is_401(api: Api, headers: dict[str, str]) -> None:
    answer = api.client.get("/contacts/P1", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_is_401(api: Api, store: Any) -> None:
    view = api.keys["view"]
    assert api.call("GET", "/contacts/P1", view).status_code == 200
    with store.transaction() as conn:
        key_id = conn.execute(api_keys.select().where(api_keys.c.name == "view key")).first().key_id
        assert revoke_key(conn, key_id, "other") is False  # another organisation cannot revoke it
        assert revoke_key(conn, key_id, "acme") is True
    answer = api.call("GET", "/contacts/P1", view)
    assert (answer.status_code, answer.json()["error"]["message"]) == (401, "invalid or revoked API key")


def test_the_docs_describe_every_endpoint_and_the_bearer_scheme(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert {
        "/events",
        "/contacts/{contact_id}",
        "/customers/{customer_id}",
        "/contacts/{contact_id}/toggles",
        "/toggles/bulk",
        "/templates",
        "/templates/{kind}/{channel}/{locale}",
        "/templates/{kind}/{channel}/{locale}/{part}",
        "/templates/{kind}/{channel}/enable",
        "/templates/{kind}/{channel}/disable",
        "/notify/preview",
        "/notify/send",
        "/invoices/{invoice_id}/history",
        "/contacts/{contact_id}/activity",
        "/payments/{payment_id}/cancel",
    } <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
