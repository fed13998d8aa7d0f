"""Collecting by Direct Debit: one test per sentence of the rules in ``workers.rules.collection``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.directory import ContactView, CustomerView, EmailView, OrgView
from schemas.events import Invoice, InvoiceCreated
from schemas.notifications import Channel, Kind
from schemas.rows import BillingRequestRow
from schemas.validation import parse_event
from tests.factories import invoice_created, payment_received
from workers.rules.collection import (
    Action,
    EventRef,
    Facts,
    authorisation_url_of,
    currency_exponent,
    idempotency_key,
    mandate_setup_payload,
    minor_units,
    payer_details,
    payment_metadata,
    plan_collection,
    wants_collection,
)
from workers.rules.recipients import SEND, mandate_setup_routing

ACTIVE = Facts(integration_active=True)


def invoice(**fields: Any) -> Invoice:
    event = parse_event(invoice_created(collection="direct_debit", **fields))
    assert isinstance(event, InvoiceCreated)
    return event.data.invoice


# -- minor units ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1234.50", "EUR", 123450),
        ("0.01", "GBP", 1),
        ("10", "SEK", 1000),
        ("1235", "JPY", 1235),
        ("1235.00", "JPY", 1235),
        ("1.234", "KWD", 1234),
    ],
)
def test_amounts_become_minor_units_by_the_currencys_exponent(amount: str, currency: str, minor: int) -> None:
    assert minor_units(Decimal(amount), currency) == minor


def test_yen_has_no_minor_unit_and_most_currencies_have_cents() -> None:
    assert (currency_exponent("JPY"), currency_exponent("EUR"), currency_exponent("KWD")) == (0, 2, 3)


@pytest.mark.parametrize(("amount", "currency"), [("12.345", "EUR"), ("1234.5", "JPY")])
def test_an_amount_finer_than_the_minor_unit_is_refused_not_rounded(amount: str, currency: str) -> None:
    with pytest.raises(ValueError, match="finer"):
        minor_units(Decimal(amount), currency)


# -- the plan ----------------------------------------------------------------------------------
def test_only_an_invoice_created_that_asks_for_direct_debit_is_collected() -> None:
    assert wants_collection(parse_event(invoice_created(collection="direct_debit")))
    assert not wants_collection(parse_event(invoice_created()))
    assert not wants_collection(parse_event(payment_received()))


def test_the_customers_active_mandate_collects_the_balance_in_minor_units() -> None:
    plan = plan_collection("acme", invoice(balance="1000.25"), Facts(True, active_mandate="MD1"))
    assert (plan.action, plan.mandate_id, plan.amount_minor) == (Action.PAY, "MD1", 100025)


def test_the_mandate_the_event_names_comes_before_the_active_one() -> None:
    plan = plan_collection("acme", invoice(mandate_id="MD9"), Facts(True, active_mandate="MD1"))
    assert (plan.action, plan.mandate_id, plan.reason) == (Action.PAY, "MD9", "named_mandate")


def test_a_named_mandate_we_know_is_another_customers_is_not_used() -> None:
    facts = Facts(True, named_mandate_owner=("other-org", "C1"))
    plan = plan_collection("acme", invoice(mandate_id="MD9"), facts)
    assert (plan.action, plan.reason) == (Action.SKIP, "mandate_not_customers")
    mine = Facts(True, named_mandate_owner=("acme", "C1"))
    assert plan_collection("acme", invoice(mandate_id="MD9"), mine).action == Action.PAY


def test_a_disconnected_gocardless_integration_collects_nothing() -> None:
    plan = plan_collection("acme", invoice(), Facts(False, active_mandate="MD1"))
    assert (plan.action, plan.reason) == (Action.SKIP, "gocardless_not_connected")


@pytest.mark.parametrize("balance", ["0.00", "-5.00"])
def test_a_balance_of_zero_or_less_has_nothing_to_collect(balance: str) -> None:
    plan = plan_collection("acme", invoice(balance=balance), Facts(True, active_mandate="MD1"))
    assert (plan.action, plan.reason) == (Action.SKIP, "nothing_to_collect")


def test_an_amount_finer_than_the_currency_allows_is_skipped_as_invalid() -> None:
    plan = plan_collection("acme", invoice(balance="10.005"), Facts(True, active_mandate="MD1"))
    assert (plan.action, plan.reason) == (Action.SKIP, "invalid_amount")


def test_a_payment_already_recorded_for_the_invoice_is_not_made_again() -> None:
    plan = plan_collection("acme", invoice(), Facts(True, active_mandate="MD1", payment_recorded=True))
    assert plan.action == Action.NOTHING


def test_without_a_mandate_the_customer_is_asked_to_set_one_up() -> None:
    plan = plan_collection("acme", invoice(), ACTIVE)
    assert (plan.action, plan.reason) == (Action.REQUEST_MANDATE, "no_mandate")


def test_an_outstanding_request_for_the_invoice_is_handed_on_again_not_made_twice() -> None:
    plan = plan_collection("acme", invoice(), Facts(True, outstanding_request="BRQ1"))
    assert (plan.action, plan.billing_request_id) == (Action.REDRIVE_MANDATE_SETUP, "BRQ1")


def test_the_idempotency_key_is_the_invoice_id_qualified_by_the_organisation() -> None:
    assert idempotency_key("acme", "INV-1") == "acme:INV-1"
    assert idempotency_key("acme", "INV-1") != idempotency_key("globex", "INV-1")


def test_the_payment_carries_herald_metadata_within_gocardless_three_keys() -> None:
    metadata = payment_metadata("acme", "C1", "INV-1")
    assert metadata == {"herald_org_id": "acme", "herald_customer_id": "C1", "herald_invoice_id": "INV-1"}


# -- the mandate-setup link ------------------------------------------------------------------------
def _contact(cid: str, *emails: EmailView, primary: bool = False) -> ContactView:
    return ContactView(cid, primary, "Aino", None, None, None, "fi", "active", emails=emails)


def test_the_link_goes_by_email_to_each_address_once_by_the_email_rules() -> None:
    shared = EmailView("pay@acme.example")
    customer = CustomerView(
        "acme",
        "C1",
        "Acme Oy",
        True,
        (
            _contact("P1", shared, EmailView("off@acme.example", notify=False), primary=True),
            _contact(
                "P2",
                EmailView("PAY@acme.example"),
                EmailView("x@acme.example", True, (("new_invoice", False),)),
            ),
        ),
    )
    routing = mandate_setup_routing(OrgView("acme", "FI"), customer)
    assert routing.kind == Kind.MANDATE_SETUP
    assert {d.channel for d in routing.decisions} == {Channel.EMAIL}
    assert [(d.recipient, d.reason) for d in routing.decisions] == [
        ("pay@acme.example", SEND),
        ("off@acme.example", "email_notify_off"),
        ("pay@acme.example", "duplicate_address"),
        ("x@acme.example", "category_off"),  # the new-invoice category governs the link
    ]


def test_the_link_is_not_sent_where_the_organisation_switched_its_email_template_off() -> None:
    org = OrgView("acme", "FI", disabled_templates=frozenset({"mandate_setup:email"}))
    customer = CustomerView("acme", "C1", "Acme Oy", True, (_contact("P1", EmailView("a@b.example")),))
    assert [d.reason for d in mandate_setup_routing(org, customer).decisions] == ["template_disabled"]


def test_an_unknown_customer_gets_no_link() -> None:
    assert mandate_setup_routing(OrgView("acme", "FI"), None).outcome == "unknown_customer"


def test_the_payer_page_is_prefilled_with_the_primary_contacts_address() -> None:
    customer = CustomerView(
        "acme",
        "C1",
        "Acme Oy",
        True,
        (
            _contact("P2", EmailView("other@b.example")),
            _contact("P1", EmailView("main@b.example"), primary=True),
        ),
    )
    details = payer_details(customer)
    assert (details.email, details.company_name) == ("main@b.example", "Acme Oy")
    assert payer_details(None).email is None


def test_the_setup_event_is_keyed_on_the_billing_request_and_carries_the_link() -> None:
    row = BillingRequestRow(
        gc_id="BRQ123",
        org_id="acme",
        customer_id="C1",
        invoice_id="INV-1",
        flow_id="BRF1",
        authorisation_url="https://pay.example/flow/BRF1",
        status="pending",
        created_at=datetime(2026, 11, 23, 10, 0),  # naive, as SQLite hands it back
    )
    payload = mandate_setup_payload(row)
    assert payload["type"] == "mandate.setup_requested"
    assert payload["event_id"] == "mandate_setup.BRQ123"
    assert datetime.fromisoformat(payload["occurred_at"]).tzinfo == UTC
    assert authorisation_url_of(payload) == "https://pay.example/flow/BRF1"
    assert EventRef.of(payload) == EventRef("acme", "mandate_setup.BRQ123", "INV-1", "C1")
