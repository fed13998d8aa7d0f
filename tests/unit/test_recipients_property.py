"""Property: whatever the directory and event, nothing switched off is ever sent to."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.directory import ContactView, CustomerView, EmailView, OrgView
from schemas.notifications import Channel
from schemas.validation import parse_event
from tests.factories import invoice_created, payment_received, reminder_due
from workers.rules.recipients import EMAIL_CATEGORY, SEND, route

CATEGORIES = ("new_invoice", "pending_reminders", "payment_confirmation", "refunds")
TEMPLATES = [
    f"{k}:{c}" for k in ("invoice", "payment_reminder", "payment_thank_you") for c in ("sms", "email")
]

emails = st.builds(
    EmailView,
    address=st.sampled_from(["a@x.fi", "b@x.fi", "c@x.fi"]),
    notify=st.booleans(),
    categories=st.lists(st.tuples(st.sampled_from(CATEGORIES), st.booleans()), max_size=4).map(
        lambda pairs: tuple(sorted(dict(pairs).items()))
    ),
)
contacts = st.builds(
    ContactView,
    contact_id=st.sampled_from([f"P{i}" for i in range(6)]),
    is_primary=st.booleans(),
    name=st.just("x"),
    mobile_raw=st.sampled_from([None, "", "12345", "+358401234567", "040 7654321"]),
    mobile_e164=st.none(),
    sms_enabled=st.sampled_from([None, True, False]),
    locale=st.sampled_from(["en", "fi", "ja"]),
    status=st.sampled_from(["active", "pending_activation"]),
    sms_opted_out=st.booleans(),
    emails=st.lists(emails, max_size=3).map(tuple),  # repeats too: the rule must cope
)
customers = st.builds(
    CustomerView,
    org_id=st.just("acme"),
    customer_id=st.just("C1"),
    name=st.just("x"),
    sms_enabled=st.booleans(),
    contacts=st.lists(contacts, max_size=6, unique_by=lambda c: c.contact_id).map(tuple),
)
orgs = st.builds(
    OrgView,
    org_id=st.just("acme"),
    region=st.sampled_from(["FI", "US"]),
    sms_connected=st.booleans(),
    disabled_templates=st.frozensets(st.sampled_from(TEMPLATES)),
)
events = st.sampled_from(
    [
        invoice_created(send=True),
        invoice_created(send=False),
        reminder_due(),
        payment_received(method="online"),
        payment_received(method="manual", notify=True),
        payment_received(method="manual", notify=False),
    ]
).map(parse_event)


@settings(max_examples=400, deadline=None)
@given(event=events, org=orgs, customer=customers, paid=st.booleans())
def test_no_send_decision_for_anything_switched_off(event, org, customer, paid) -> None:  # type: ignore[no-untyped-def]
    routing = route(event, org, customer, paid=paid)
    by_id = {c.contact_id: c for c in customer.contacts}
    told: list[str] = []
    for decision in routing.decisions:
        if not decision.sends:
            continue
        assert routing.kind is not None
        assert org.template_enabled(routing.kind, decision.channel)
        person = by_id[decision.contact_id]
        if decision.channel == Channel.SMS:
            assert org.sms_connected
            assert customer.sms_enabled
            assert not person.sms_opted_out
            assert person.sms_enabled is True or (person.sms_enabled is None and person.is_primary)
            assert decision.recipient.startswith("+")
        else:
            address = next(
                e for e in person.emails if e.address == decision.recipient
            )  # first listing decides
            assert address.notify
            assert address.category_on(EMAIL_CATEGORY[routing.kind])
            told.append(decision.recipient)
    assert len(told) == len(set(told))  # one address, told once per event
    if paid and routing.kind is not None and routing.kind.value == "payment_reminder":
        assert all(d.reason != SEND for d in routing.decisions)
