"""Who is told (the skeleton's SMS rules), one test per sentence."""

from __future__ import annotations

from schemas.directory import ContactView, CustomerView
from schemas.notifications import Channel, Kind
from schemas.validation import parse_event
from tests.factories import invoice_created, payment_received, reminder_due
from workers.rules.recipients import SEND, notification_kind, route, sms_decision


def contact(
    cid: str = "P1", *, primary: bool = True, mobile: str | None = "+358401234567", **kw
) -> ContactView:  # type: ignore[no-untyped-def]
    values = {
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
    return ContactView(**values)  # type: ignore[arg-type]


def customer(*contacts: ContactView, sms_enabled: bool = True) -> CustomerView:
    return CustomerView("acme", "C1", "Acme Oy", sms_enabled, tuple(contacts))


def test_invoice_created_makes_an_invoice_notification_when_it_is_to_be_sent() -> None:
    assert notification_kind(parse_event(invoice_created(send=True))) == (Kind.INVOICE, "routed")


def test_invoice_created_without_send_is_left_to_a_manual_notify() -> None:
    assert notification_kind(parse_event(invoice_created(send=False))) == (None, "manual_only")


def test_recurring_invoices_created_by_a_schedule_are_sent_like_any_other() -> None:
    assert notification_kind(parse_event(invoice_created(send=True, recurring=True)))[0] == Kind.INVOICE


def test_reminder_due_makes_a_payment_reminder() -> None:
    assert notification_kind(parse_event(reminder_due()))[0] == Kind.PAYMENT_REMINDER


def test_online_payments_get_a_thank_you_automatically() -> None:
    assert notification_kind(parse_event(payment_received(method="online")))[0] == Kind.PAYMENT_THANK_YOU


def test_a_payment_recorded_by_hand_gets_a_thank_you_only_when_the_event_asks() -> None:
    assert notification_kind(parse_event(payment_received(method="manual", notify=False)))[0] is None
    assert (
        notification_kind(parse_event(payment_received(method="manual", notify=True)))[0]
        == Kind.PAYMENT_THANK_YOU
    )


def test_sms_switched_off_for_a_customer_covers_all_its_contacts() -> None:
    primary = contact(sms_enabled=True)
    assert sms_decision(customer(primary, sms_enabled=False), primary).reason == "customer_sms_off"


def test_the_primary_contact_gets_sms_unless_switched_off() -> None:
    assert sms_decision(customer(contact()), contact()).reason == SEND
    off = contact(sms_enabled=False)
    assert sms_decision(customer(off), off).reason == "contact_sms_off"


def test_other_contact_persons_get_sms_only_where_switched_on() -> None:
    person = contact("Q1", primary=False)
    assert sms_decision(customer(person), person).reason == "contact_sms_off"
    person_on = contact("Q1", primary=False, sms_enabled=True)
    assert sms_decision(customer(person_on), person_on).reason == SEND


def test_no_mobile_number_is_no_phone() -> None:
    none = contact(mobile=None)
    assert sms_decision(customer(none), none).reason == "no_phone"


def test_a_number_that_does_not_parse_to_e164_is_invalid_phone() -> None:
    bad = contact(mobile_raw="12345", mobile_e164=None)
    assert sms_decision(customer(bad), bad).reason == "invalid_phone"


def test_a_decision_carries_the_e164_recipient_and_the_contacts_locale() -> None:
    decision = sms_decision(customer(contact()), contact())
    assert (decision.channel, decision.recipient, decision.locale) == (Channel.SMS, "+358401234567", "fi")


def test_route_decides_for_every_contact_of_the_customer() -> None:
    routing = route(parse_event(invoice_created()), customer(contact(), contact("Q1", primary=False)))
    assert [(d.contact_id, d.reason) for d in routing.decisions] == [("P1", SEND), ("Q1", "contact_sms_off")]


def test_an_event_for_a_customer_never_imported_is_recorded_as_unknown_customer() -> None:
    routing = route(parse_event(invoice_created()), None)
    assert (routing.outcome, routing.decisions) == ("unknown_customer", ())


def test_a_customer_without_contacts_is_recorded_as_no_contacts() -> None:
    assert route(parse_event(invoice_created()), customer()).outcome == "no_contacts"


def test_an_event_that_notifies_nobody_automatically_makes_no_decisions() -> None:
    routing = route(parse_event(invoice_created(send=False)), customer(contact()))
    assert (routing.kind, routing.outcome, routing.decisions) == (None, "manual_only", ())
