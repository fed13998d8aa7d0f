"""The directory import format and phone numbers in E.164."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.directory import CustomerRecord
from schemas.phones import to_e164
from tests.factories import customer


def test_numbers_are_read_in_the_default_region_and_stored_in_e164() -> None:
    assert to_e164("040 1234567", "FI") == "+358401234567"
    assert to_e164("+81 90-1234-5678", "FI") == "+819012345678"


def test_a_number_that_does_not_parse_is_none() -> None:
    assert to_e164("12345", "FI") is None
    assert to_e164("", "FI") is None


def test_a_contacts_defaults_are_the_documented_ones() -> None:
    record = CustomerRecord.model_validate(customer())
    person = record.contacts[0]
    assert (person.sms_enabled, person.status, person.emails) == (None, "active", [])


def test_a_customer_with_two_primary_contacts_is_refused() -> None:
    contacts = [{"contact_id": "P1", "primary": True}, {"contact_id": "P2", "primary": True}]
    with pytest.raises(ValidationError, match="more than one primary contact: P1, P2"):
        CustomerRecord.model_validate(customer(contacts=contacts))


def test_email_toggles_default_to_on() -> None:
    contacts = [{"contact_id": "P1", "emails": [{"address": "aino@example.fi"}]}]
    email = CustomerRecord.model_validate(customer(contacts=contacts)).contacts[0].emails[0]
    assert email.notify
    assert all(email.categories.model_dump().values())


def test_a_contact_listing_one_address_twice_is_refused() -> None:
    contacts = [{"contact_id": "P1", "emails": [{"address": "a@x.fi"}, {"address": "A@x.fi"}]}]
    with pytest.raises(ValidationError, match=r"email address repeated: a@x\.fi"):
        CustomerRecord.model_validate(customer(contacts=contacts))
