"""The mandate-setup landing page: public, plain, where GoCardless sends the payer back."""

from __future__ import annotations

from fastapi.testclient import TestClient

from infra.bootstrap import Services
from infra.store.organisations import update_org
from producers.api.app import create_app
from producers.api.pages import MANDATE_COMPLETE_PATH
from workers.collect import MANDATE_COMPLETE_PATH as COLLECT_REDIRECT_PATH


def test_the_page_the_collect_stage_sends_payers_to_thanks_them_without_a_key(store: Services) -> None:
    assert MANDATE_COMPLETE_PATH == COLLECT_REDIRECT_PATH
    client = TestClient(create_app(store.settings))
    page = client.get(MANDATE_COMPLETE_PATH)  # no Authorization header
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Thank you — your Direct Debit is set up" in page.text
    assert "You can close this page." in page.text


def test_it_names_the_organisation_escaped_and_ignores_one_it_does_not_know(store: Services) -> None:
    with store.transaction() as conn:
        update_org(conn, "acme", {"name": "Acme <Oy> & Co"})
    client = TestClient(create_app(store.settings))
    named = client.get(MANDATE_COMPLETE_PATH, params={"org": "acme"})
    assert "Acme &lt;Oy&gt; &amp; Co will collect your payments by Direct Debit" in named.text
    unknown = client.get(MANDATE_COMPLETE_PATH, params={"org": "nobody"})
    assert unknown.status_code == 200
    assert "will collect" not in unknown.text
