"""Fuzzing tenancy: acme's keys naming the other organisation's ids (and look-alikes, control
characters, huge ids) on every keyed route that takes an id, and batches of events of the other
organisation in every shape. Nothing of the other organisation is shown, changed or published."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from tests.fuzz import strategies as hostile
from tests.fuzz.conftest import ACME, FUZZ, OTHER, World, assert_answered_well

pytestmark = pytest.mark.integration

#: Every keyed route that names something by id, with where the id goes.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/contacts/{id}?reveal=true", "view"),
    ("GET", "/contacts/{id}/activity?reveal=true", "view"),
    ("GET", "/invoices/{id}/history?reveal=true", "view"),
    ("PUT", "/contacts/{id}/toggles", "edit"),
    ("POST", "/notify/preview", "view"),
    ("POST", "/notify/send", "send"),
    ("POST", "/payments/{id}/cancel", "send"),
)
_keys = st.sampled_from(["view", "send", "edit", "admin"])


def _request(route: tuple[str, str, str], ident: str) -> tuple[str, str, Any]:
    method, path, _needs = route
    if "{id}" in path:
        toggles = {"sms": "disable"} if path.endswith("toggles") else None
        return method, path.replace("{id}", quote(ident, safe="")), toggles
    body = (
        {"invoice_id": ident, "reveal": True}
        if path.endswith("preview")
        else {"invoice_id": ident, "preview": "x"}
    )
    return method, path, body


@settings(FUZZ, max_examples=40)
@given(ident=hostile.path_ids, key=_keys)
def test_acme_naming_the_other_organisations_ids_sees_and_changes_nothing_of_it(
    live: World, ident: str, key: str
) -> None:
    before = live.tenant_rows(OTHER)
    for route in ROUTES:  # every route for each id: a rare id class still meets every route
        method, path, body = _request(route, ident)
        if key != "admin":  # reveal is an admin's; other levels ask masked
            path = path.replace("?reveal=true", "")
            body = {k: v for k, v in body.items() if k != "reveal"} if isinstance(body, dict) else body
        note(f"{method} {path} with acme's {key} key: {body!r:.200}")
        answer = live.call(method, path, key, json=body)
        assert_answered_well(answer)
        leaked = live.leaks(answer.text)
        assert not leaked, f"{method} {path} showed acme the other organisation's {leaked}"
    assert live.tenant_rows(OTHER) == before, "the other organisation's rows changed"


@pytest.mark.stores("sqlite")
@settings(FUZZ, max_examples=30)
@given(batch=hostile.tenant_batch())
def test_no_event_of_another_organisation_is_published_whatever_its_shape(
    live: World, batch: list[hostile.Item]
) -> None:
    for index, item in enumerate(batch):
        note(f"item {index}: {item!r}")
    content = json.dumps([item.payload for item in batch]).encode()
    answer = live.call(
        "POST", "/events", "send", content=content, headers={"Content-Type": "application/json"}
    )
    published = live.drain_events()
    strangers = sorted({str(e.get("org_id")) for e in published} - {ACME})
    assert not strangers, f"events of {strangers} were published with acme's key"
    assert_answered_well(answer)
    body = answer.json()
    rejected = {r["index"] for r in (body["rejected"] if "rejected" in body else body["error"]["details"])}
    ids = {e["event_id"] for e in published}
    for index, item in enumerate(batch):
        if item.verdict == "good":
            assert index not in rejected, f"item {index} ({item.why}) was rejected"
            assert item.event_id in ids, f"item {index} ({item.why}) was not published"
        else:
            assert index in rejected, f"item {index} ({item.why}) was not reported as rejected"
