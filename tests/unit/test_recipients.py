"""Who is told: one test per sentence of DESIGN.md's recipient rules."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.directory import ContactView, CustomerView, EmailView, OrgView
from schemas.notifications import Channel, Kind
from schemas.validation import parse_event
from tests.factories import invoice_created, payment_received, reminder_due
from workers.rules.recipients import SEND, email_decisions, notification_kind, route, sms_decision, sms_sender
from workers.rules.segments import count_segments, credit_allows

ORG = OrgView("acme", "FI")


def contact(
    cid: str = "P1", *, primary: bool = True, mobile: str | None = "+358401234567", **kw: Any
) -> ContactView:
    values: dict[str, Any] = {
        "contact_id": cid,
        "is_primary": primary,
        "name": "Aino",
        "mobile_raw": mobile,
        "mobile_e164": mobile,
        "sms_enabled": None,
        "locale": "fi",
        "status": "active",
    }
    values.update(kw)
    return ContactView(**values)


def email(address: str = "aino@example.fi", notify: bool = True, **categories: bool) -> EmailView:
    return EmailView(address, notify, tuple(sorted(categories.items())))


def customer(*contacts: ContactView, sms_enabled: bool = True) -> CustomerView:
    return CustomerView("acme", "C1", "Acme Oy", sms_enabled, tuple(contacts))


def sms(
    person: ContactView, *, org: OrgView = ORG, sms_enabled: bool = True, kind: Kind = Kind.INVOICE
) -> str:
    return sms_decision(kind, org, customer(person, sms_enabled=sms_enabled), person).reason


def mails(person: ContactView, *, org: OrgView = ORG, kind: Kind = Kind.INVOICE) -> list[str]:
    return [d.reason for d in email_decisions(kind, org, person, set())]


# -- which notification an event makes --------------------------------------------------------


def test_invoice_created_is_sent_automatically_only_when_the_invoice_says_so() -> None:
    assert notification_kind(parse_event(invoice_created(send=True))) == (Kind.INVOICE, "routed")
    assert notification_kind(parse_event(invoice_created(send=False))) == (None, "manual_only")


def test_recurring_invoices_created_by_a_schedule_are_sent_like_any_other() -> None:
    assert notification_kind(parse_event(invoice_created(send=True, recurring=True)))[0] == Kind.INVOICE


def test_reminder_due_makes_a_payment_reminder_skipped_as_already_paid_when_paid_meanwhile() -> None:
    event = parse_event(reminder_due())
    assert notification_kind(event)[0] == Kind.PAYMENT_REMINDER
    routing = route(event, ORG, customer(contact(emails=(email(),))), paid=True)
    assert routing.outcome == "already_paid"
    assert {d.reason for d in routing.decisions} == {"already_paid"}


def test_payment_received_thanks_online_payments_and_manual_ones_only_when_asked() -> None:
    assert notification_kind(parse_event(payment_received(method="online")))[0] == Kind.PAYMENT_THANK_YOU
    assert notification_kind(parse_event(payment_received(method="manual", notify=False)))[0] is None
    assert (
        notification_kind(parse_event(payment_received(method="manual", notify=True)))[0]
        == Kind.PAYMENT_THANK_YOU
    )


# -- SMS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("org", "expected"),
    [
        (OrgView("acme", "FI", sms_connected=False), "sms_not_connected"),
        (OrgView("acme", "FI", disabled_templates=frozenset({"invoice:sms"})), "template_disabled"),
        (OrgView("acme", "FI", disabled_templates=frozenset({"invoice:email"})), SEND),
    ],
)
def test_sms_1_the_organisation_has_sms_connected_and_the_kinds_template_enabled(
    org: OrgView, expected: str
) -> None:
    assert sms(contact(), org=org) == expected


def test_sms_1_each_kind_can_be_switched_off_organisation_wide_on_its_own() -> None:
    org = OrgView("acme", "FI", disabled_templates=frozenset({"payment_reminder:sms"}))
    assert sms(contact(), org=org, kind=Kind.PAYMENT_REMINDER) == "template_disabled"
    assert sms(contact(), org=org, kind=Kind.INVOICE) == SEND


def test_sms_2_sms_switched_off_for_a_customer_covers_all_its_contacts() -> None:
    assert sms(contact(sms_enabled=True), sms_enabled=False) == "customer_sms_off"
    assert sms(contact("Q1", primary=False, sms_enabled=True), sms_enabled=False) == "customer_sms_off"


def test_sms_3_the_primary_contact_gets_sms_unless_switched_off() -> None:
    assert sms(contact()) == SEND
    assert sms(contact(sms_enabled=False)) == "contact_sms_off"


def test_sms_4_other_contact_persons_get_sms_only_where_switched_on_individually() -> None:
    assert sms(contact("Q1", primary=False)) == "contact_sms_off"
    assert sms(contact("Q1", primary=False, sms_enabled=True)) == SEND


@pytest.mark.parametrize(
    ("mobile", "region", "expected"),
    [
        (None, "FI", "no_phone"),
        ("", "FI", "no_phone"),
        ("12345", "FI", "invalid_phone"),
        ("040 1234567", "FI", SEND),  # national, read in the organisation's region
        ("040 1234567", "US", "invalid_phone"),
    ],
)
def test_sms_5_no_mobile_is_no_phone_and_one_not_e164_in_the_orgs_region_is_invalid_phone(
    mobile: str | None, region: str, expected: str
) -> None:
    assert sms(contact(mobile=mobile), org=OrgView("acme", region)) == expected


def test_sms_5_numbers_are_sent_to_in_e164() -> None:
    person = contact(mobile="040 1234567")
    assert sms_decision(Kind.INVOICE, ORG, customer(person), person).recipient == "+358401234567"


def test_sms_6_a_contact_who_replied_stop_is_opted_out() -> None:
    assert sms(contact(sms_opted_out=True, sms_enabled=True)) == "opted_out"


def test_sms_4_a_contacts_own_no_for_an_account_always_holds() -> None:
    assert sms(contact(account_sms=False)) == "contact_sms_off"
    assert sms(contact(account_sms=False, sms_enabled=True)) == "contact_sms_off"
    assert sms(contact(account_sms=None)) == SEND


def test_sms_4_a_contacts_own_yes_for_an_account_switches_a_contact_person_on_but_not_over_an_off() -> None:
    assert sms(contact(primary=False, account_sms=True)) == SEND
    assert sms(contact(primary=False, account_sms=True, sms_enabled=False)) == "contact_sms_off"
    assert sms(contact(primary=False)) == "contact_sms_off"


@pytest.mark.parametrize(
    ("buys_credit", "balance", "parts", "allowed"),
    [(False, 0, 3, True), (True, 3, 3, True), (True, 2, 3, False), (True, 0, 1, False)],
)
def test_sms_7_where_the_org_buys_credit_a_message_costing_more_than_the_balance_is_not_sent(
    buys_credit: bool, balance: int, parts: int, allowed: bool
) -> None:
    assert credit_allows(buys_credit, balance, parts) is allowed


@pytest.mark.parametrize(
    ("body", "encoding", "units", "parts"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("a" * 79 + "€", "GSM-7", 81, 1),
        ("😀", "UCS-2", 2, 1),
        ("ж" * 70, "UCS-2", 70, 1),
        ("ж" * 71, "UCS-2", 71, 2),
    ],
)
def test_sms_7_segments_gsm7_160_153_per_part_ucs2_70_67_per_part(
    body: str, encoding: str, units: int, parts: int
) -> None:
    segments = count_segments(body)
    assert (segments.encoding, segments.units, segments.parts) == (encoding, units, parts)


def test_sms_7_a_body_over_1600_characters_is_refused() -> None:
    with pytest.raises(ValueError, match="1601 characters, over the limit of 1600"):
        count_segments("a" * 1601)


@pytest.mark.parametrize(
    ("org", "expected"),
    [
        (OrgView("acme", "FI"), "+15005550006"),
        (OrgView("acme", "FI", sender_number="+358401110000"), "+358401110000"),
        (OrgView("acme", "FI", sender_number="+358401110000", sender_name="Acme"), "+358401110000"),
        (
            OrgView("acme", "FI", sender_number="+358401110000", sender_name="Acme", sender_name_active=True),
            "Acme",
        ),
    ],
)
def test_sms_8_the_orgs_number_or_its_sender_name_once_activated(org: OrgView, expected: str) -> None:
    assert sms_sender(org, "+15005550006") == expected
    person = contact()
    assert sms_decision(Kind.INVOICE, org, customer(person), person, "+15005550006").sender == expected


# -- email -------------------------------------------------------------------------------------


def test_email_1_each_address_has_its_own_notify_toggle() -> None:
    person = contact(emails=(email("a@x.fi"), email("b@x.fi", notify=False)))
    assert mails(person) == [SEND, "email_notify_off"]


@pytest.mark.parametrize(
    ("kind", "category"),
    [
        (Kind.INVOICE, "new_invoice"),
        (Kind.PAYMENT_REMINDER, "pending_reminders"),
        (Kind.PAYMENT_THANK_YOU, "payment_confirmation"),
    ],
)
def test_email_1_and_per_category_toggles(kind: Kind, category: str) -> None:
    assert mails(contact(emails=(email(**{category: False}),)), kind=kind) == ["category_off"]
    assert mails(contact(emails=(email(refunds=False),)), kind=kind) == [SEND]


def test_email_5_an_address_that_hard_bounced_is_suppressed_before_its_toggles() -> None:
    bounced = EmailView("a@x.fi", True, (), suppressed=True)
    assert mails(contact(emails=(bounced, email("b@x.fi")))) == ["suppressed", SEND]
    off_and_bounced = EmailView("a@x.fi", False, (), suppressed=True)
    assert mails(contact(emails=(off_and_bounced,))) == ["suppressed"]


def test_email_2_a_contact_still_pending_activation_is_notified() -> None:
    assert mails(contact(status="pending_activation", emails=(email(),))) == [SEND]


def test_email_3_within_one_event_one_address_is_told_once() -> None:
    one, two = (
        contact("P1", emails=(email(),)),
        contact("Q1", primary=False, emails=(email("AINO@example.fi"),)),
    )
    decisions = route(parse_event(invoice_created()), ORG, customer(one, two)).decisions
    assert [(d.contact_id, d.reason) for d in decisions if d.channel == Channel.EMAIL] == [
        ("P1", SEND),
        ("Q1", "duplicate_address"),
    ]


def test_email_4_the_organisations_email_template_for_the_kind_is_enabled() -> None:
    org = OrgView("acme", "FI", disabled_templates=frozenset({"invoice:email"}))
    assert mails(contact(emails=(email(),)), org=org) == ["template_disabled"]


def test_a_contact_without_email_addresses_is_recorded_as_no_email() -> None:
    assert mails(contact()) == ["no_email"]


# -- combinations ------------------------------------------------------------------------------


def test_a_customer_with_sms_off_whose_primary_has_sms_on_gets_no_sms() -> None:
    person = contact(sms_enabled=True, emails=(email(),))
    decisions = route(parse_event(invoice_created()), ORG, customer(person, sms_enabled=False)).decisions
    assert [(d.channel, d.reason) for d in decisions] == [
        (Channel.SMS, "customer_sms_off"),
        (Channel.EMAIL, SEND),
    ]


def test_a_contact_in_two_customers_is_told_once_per_event_of_each() -> None:
    shared = contact(emails=(email(),))
    first = CustomerView("acme", "C1", "One", True, (shared,))
    second = CustomerView("acme", "C2", "Two", True, (shared,))
    for event, owner in (
        (invoice_created("e1", customer_id="C1"), first),
        (invoice_created("e2", customer_id="C2"), second),
    ):
        decisions = route(parse_event(event), ORG, owner).decisions
        assert sorted((d.channel, d.reason) for d in decisions) == [
            (Channel.EMAIL, SEND),
            (Channel.SMS, SEND),
        ]


def test_an_event_for_a_customer_never_imported_is_recorded_as_unknown_customer() -> None:
    assert route(parse_event(invoice_created()), ORG, None).outcome == "unknown_customer"


def test_a_customer_without_contacts_is_recorded_as_no_contacts() -> None:
    assert route(parse_event(invoice_created()), ORG, customer()).outcome == "no_contacts"


def test_an_event_that_notifies_nobody_automatically_makes_no_decisions() -> None:
    routing = route(parse_event(invoice_created(send=False)), ORG, customer(contact()))
    assert (routing.kind, routing.outcome, routing.decisions) == (None, "manual_only", ())
