"""Fuzzing the directory over HTTP (``PUT /customers/{id}``, toggles one by one and in bulk) with
hostile rows and the other organisation's ids: never a 5xx, the one error shape, and nothing of
the other organisation changes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from tests.fuzz import strategies as hostile
from tests.fuzz.conftest import FUZZ, OTHER, World, assert_answered_well

pytestmark = pytest.mark.integration

JSON_HEADERS = {"Content-Type": "application/json"}
_writers = st.sampled_from(["edit", "admin"])


def _send(live: World, method: str, path: str, key: str, body: Any) -> Any:
    note(f"{method} {path} with a {key} key: {body!r:.300}")
    return live.call(
        method, path, key, content=json.dumps(body, allow_nan=True).encode(), headers=JSON_HEADERS
    )


@settings(FUZZ, max_examples=50)
@given(row=hostile.hostile_row(), customer_id=st.sampled_from(["C1", "C9", "CX"]), key=_writers)
def test_a_hostile_customer_row_is_answered_cleanly_and_never_touches_the_other_organisation(
    live: World, row: tuple[Any, hostile.Verdict, str], customer_id: str, key: str
) -> None:
    body, verdict, why = row
    before = live.tenant_rows(OTHER)
    answer = _send(live, "PUT", f"/customers/{customer_id}", key, body)
    assert live.tenant_rows(OTHER) == before, f"{why}: the other organisation's rows changed"
    assert_answered_well(answer)
    if verdict == "good":
        assert answer.status_code == 200, f"{why}: {answer.text[:300]}"
        assert answer.json()["result"] in ("created", "updated", "unchanged")
    elif verdict == "bad":
        assert answer.status_code == 422, f"{why}: {answer.status_code} {answer.text[:300]}"


@settings(FUZZ, max_examples=25)
@given(contact_id=hostile.path_ids, body=hostile.toggles_body, key=_writers, dry_run=st.booleans())
def test_hostile_toggles_of_any_contact_id_are_answered_cleanly_and_never_touch_the_other_organisation(
    live: World, contact_id: str, body: Any, key: str, dry_run: bool
) -> None:
    before = live.tenant_rows(OTHER)
    path = f"/contacts/{quote(contact_id, safe='')}/toggles?dry_run={str(dry_run).lower()}"
    answer = _send(live, "PUT", path, key, body)
    assert live.tenant_rows(OTHER) == before, "the other organisation's rows changed"
    assert_answered_well(answer)


@settings(FUZZ, max_examples=25)
@given(body=hostile.bulk_body, key=_writers)
def test_hostile_bulk_toggles_naming_the_other_organisation_never_touch_it(
    live: World, body: Any, key: str
) -> None:
    before = live.tenant_rows(OTHER)
    answer = _send(live, "POST", "/toggles/bulk", key, body)
    assert live.tenant_rows(OTHER) == before, "the other organisation's rows changed"
    assert_answered_well(answer)
