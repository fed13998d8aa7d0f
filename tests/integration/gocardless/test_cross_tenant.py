"""GoCardless and another organisation's ids: a payment's metadata, the landing page's ``?org=``
and the payment cancel. Whatever shape another organisation's id comes in, it has no effect on
that organisation, and is answered as an id nobody has."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.bootstrap import Services
from infra.settings import get_settings
from infra.store.api_keys import create_key
from infra.store.directory import upsert_customer
from infra.store.gocardless import load_payment, upsert_payment
from infra.store.organisations import update_org
from producers.api.app import create_app
from producers.api.pages import MANDATE_COMPLETE_PATH
from producers.gocardless.webhooks import handle_events
from producers.gocardless.wiring import GoCardlessWiring
from schemas.access import Level
from schemas.directory import CustomerRecord
from tests.factories import customer
from tooling.sandboxes.gocardless import GoCardlessSandbox

ACME = {"herald_org_id": "acme", "herald_customer_id": "C1"}


def _directory(services: Services) -> None:
    with services.transaction() as conn:
        for org, customer_id in (("acme", "C1"), ("other", "C9")):
            record = {**customer(customer_id), "org_id": org}
            upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
        update_org(conn, "acme", {"name": "Acme Oy"})
        update_org(conn, "other", {"name": "Other Ab"})


@pytest.mark.parametrize("org", ["other", "OTHER", "other ", " other", "other\x00", "othe\u0440"])
def test_payment_metadata_naming_another_organisation_than_the_mandates_owner_thanks_nobody(
    gc_sandbox: GoCardlessSandbox, gc_services: Services, org: str
) -> None:
    """acme's payer's mandate; the payment's metadata claims other's invoice. Its confirmation
    must not mark other's invoice paid (nor anyone's): the mandate says whose payment it is."""
    _directory(gc_services)
    mandate = gc_sandbox.add_mandate(gc_sandbox.add_customer(email="a@example.com", metadata=ACME)["id"])[
        "id"
    ]
    metadata = {"herald_org_id": org, "herald_customer_id": "C9", "herald_invoice_id": "INV-9"}
    payment = str(gc_sandbox.add_payment(mandate, 1000, "EUR", metadata=metadata)["id"])
    events = gc_sandbox.set_payment_status(payment, "submitted", webhook=False)
    events += gc_sandbox.set_payment_status(payment, "confirmed", webhook=False)

    published: list[dict[str, Any]] = []
    result = handle_events(gc_services, GoCardlessWiring(get_settings()).reader, events, published.append)
    assert result.handled == len(events)
    assert published == []
    with gc_services.reading() as conn:
        stored = load_payment(conn, payment)
    assert stored is not None
    assert stored["status"] == "confirmed"
    assert (stored["org_id"], stored["customer_id"], stored["invoice_id"]) == ("acme", "C1", None)


def test_a_payment_already_linked_is_not_moved_to_another_organisation_by_its_metadata(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    _directory(gc_services)
    mandate = gc_sandbox.add_mandate(gc_sandbox.add_customer(email="b@example.com")["id"])["id"]
    ours = {"herald_org_id": "acme", "herald_customer_id": "C1", "herald_invoice_id": "INV-1"}
    payment = gc_sandbox.add_payment(mandate, 1000, "EUR", metadata=ours)
    with gc_services.transaction() as conn:  # as collect records it
        upsert_payment(conn, payment, datetime.now(UTC), org_id="acme", invoice_id="INV-1", customer_id="C1")
    # Then the metadata at GoCardless is edited to name other's invoice.
    gc_sandbox.patch(
        payment["id"],
        metadata={"herald_org_id": "other", "herald_customer_id": "C9", "herald_invoice_id": "INV-9"},
    )
    events = gc_sandbox.set_payment_status(payment["id"], "submitted", webhook=False)
    events += gc_sandbox.set_payment_status(payment["id"], "confirmed", webhook=False)
    published: list[dict[str, Any]] = []
    handle_events(gc_services, GoCardlessWiring(get_settings()).reader, events, published.append)
    assert [(p["org_id"], p["data"]["payment"]["invoice_id"]) for p in published] == [("acme", "INV-1")]
    with gc_services.reading() as conn:
        stored = load_payment(conn, payment["id"])
    assert stored is not None
    assert (stored["org_id"], stored["invoice_id"]) == ("acme", "INV-1")


@pytest.mark.parametrize(
    "org",
    ["other ", "OTHER", "other\x00", "other%00", "oth%C3%A9r", "a" * 201, "other' OR '1'='1", "../other"],
)
def test_the_landing_page_names_no_organisation_for_an_id_nobody_has(gc_services: Services, org: str) -> None:
    _directory(gc_services)
    client = TestClient(create_app(get_settings()))
    assert "Other Ab will collect" in client.get(MANDATE_COMPLETE_PATH, params={"org": "other"}).text
    page = client.get(MANDATE_COMPLETE_PATH, params={"org": org})
    assert page.status_code in (200, 400)  # a control character in a URL may be refused outright
    assert "will collect" not in page.text


def test_the_landing_page_does_not_take_a_prefix_of_a_long_id_for_the_id(gc_services: Services) -> None:
    long_id = "o" * 200
    with gc_services.transaction() as conn:
        update_org(conn, long_id, {"name": "Long Oy"})
    client = TestClient(create_app(get_settings()))
    assert "Long Oy will collect" in client.get(MANDATE_COMPLETE_PATH, params={"org": long_id}).text
    assert "will collect" not in client.get(MANDATE_COMPLETE_PATH, params={"org": long_id + "x"}).text


@pytest.mark.parametrize(
    "shape", ["{id}", "{id} ", " {id}", "{lower}", "{id}%00", "{id}%0A", "{id}x", "{long}"]
)
def test_cancelling_another_organisations_payment_in_any_shape_is_a_404_like_an_unknown_one(
    gc_sandbox: GoCardlessSandbox, gc_services: Services, shape: str
) -> None:
    _directory(gc_services)
    mandate = gc_sandbox.add_mandate(gc_sandbox.add_customer(email="c@example.com")["id"])["id"]
    theirs = gc_sandbox.add_payment(mandate, 1000, "EUR")
    with gc_services.transaction() as conn:
        upsert_payment(conn, theirs, datetime.now(UTC), org_id="other", invoice_id="INV-9", customer_id="C9")
        key = create_key(conn, "acme", Level.ADMIN)[1]
    client = TestClient(create_app(get_settings()))
    pid = str(theirs["id"])
    path = shape.format(id=pid, lower=pid.lower(), long=pid * 300)
    answer = client.post(f"/payments/{path}/cancel", headers={"Authorization": f"Bearer {key}"})
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert gc_sandbox.record(pid)["status"] == "pending_submission"  # untouched at GoCardless
    if "%" in shape:  # a control character in the URL may be refused before any look-up
        assert (answer.status_code, error["code"]) in ((404, "not_found"), (400, "bad_request")), answer.text
        return
    assert (answer.status_code, error["code"]) == (404, "not_found"), answer.text
    assert error["message"].startswith("no payment ")
    nowhere = client.post("/payments/PM0NOBODY/cancel", headers={"Authorization": f"Bearer {key}"})
    assert (nowhere.status_code, nowhere.json()["error"]["message"]) == (404, "no payment PM0NOBODY")


def test_cancel_refusals_are_in_the_one_error_shape(
    gc_sandbox: GoCardlessSandbox, gc_services: Services
) -> None:
    _directory(gc_services)
    mandate = gc_sandbox.add_mandate(gc_sandbox.add_customer(email="d@example.com")["id"])["id"]
    submitted = gc_sandbox.add_payment(mandate, 1000, "EUR")
    gc_sandbox.set_payment_status(submitted["id"], "submitted", webhook=False)
    gone = {**submitted, "id": "PM0GONE"}  # herald has it, GoCardless does not
    with gc_services.transaction() as conn:
        for payment in (submitted, gone):
            upsert_payment(
                conn, payment, datetime.now(UTC), org_id="acme", invoice_id="INV-1", customer_id="C1"
            )
        key = create_key(conn, "acme", Level.SEND)[1]
    client = TestClient(create_app(get_settings()))
    for pid, status, code in ((submitted["id"], 409, "not_cancellable"), ("PM0GONE", 404, "not_found")):
        answer = client.post(f"/payments/{pid}/cancel", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert set(error) == {"code", "message", "details"}
        assert error["code"] == code
