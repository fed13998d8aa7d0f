"""The public preference page, one-click unsubscribe and the inbound SMS webhook under hostile
input: hostile organisation ids and tokens in the path, hostile forms, another organisation's
genuine link at acme's address. Never a 5xx, never anyone's data on a refusal, never a change to
the other organisation."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from infra.link_tokens import LinkSigner
from infra.store.tables import consent_changes
from tests.fuzz import strategies as hostile
from tests.fuzz.conftest import ACME, FUZZ, LINK_SECRET, OTHER, World

pytestmark = pytest.mark.integration

SIGNER = LinkSigner("k1", LINK_SECRET.encode())
SUFFIXES = ("", "/unsubscribe?kind=invoice", "/unsubscribe")


def _other_rows(live: World) -> int:
    with live.services.reading() as conn:
        return len(conn.execute(select(consent_changes.c.id).where(consent_changes.c.org_id == OTHER)).all())


@settings(FUZZ, max_examples=40)
@given(
    org=hostile.path_ids,
    token=st.one_of(hostile.path_ids, st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=200)),
    method=st.sampled_from(["GET", "POST"]),
    suffix=st.sampled_from(SUFFIXES),
    form=st.dictionaries(st.text(max_size=40), st.text(max_size=200), max_size=6),
)
def test_hostile_paths_and_forms_get_a_clean_page(
    live: World, org: str, token: str, method: str, suffix: str, form: dict[str, str]
) -> None:
    path = f"/preferences/{quote(org, safe='')}/{quote(token, safe='')}{suffix}"
    answer = live.call(method, path, "missing", data=form if method == "POST" else None)
    assert answer.status_code < 500, (path, answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert "Aino" not in answer.text


@settings(FUZZ, max_examples=20)
@given(suffix=st.sampled_from(SUFFIXES), form=st.dictionaries(st.text(max_size=40), st.text(max_size=40)))
def test_another_organisations_genuine_link_opens_nothing_at_acmes_address(
    live: World, suffix: str, form: dict[str, str]
) -> None:
    token = SIGNER.sign(OTHER, "Q9", "q9@example.fi")
    before = _other_rows(live)
    for method in ("GET", "POST"):
        answer = live.call(method, f"/preferences/{ACME}/{token}{suffix}", "missing", data=form)
        assert answer.status_code == 403
        assert "Aino" not in answer.text
    assert _other_rows(live) == before


@settings(FUZZ, max_examples=30)
@given(form=hostile.twilio_form)
def test_unsigned_inbound_messages_are_refused(live: World, form: dict[str, str]) -> None:
    answer = live.call("POST", "/webhooks/twilio/inbound", "missing", data=form)
    assert 400 <= answer.status_code < 500
