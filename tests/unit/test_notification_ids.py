"""Notification ids are ``uuid5`` of their key, bit for bit: they are stored, so an id computed
another way for the same (event, contact, channel, address) would notify it twice."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from infra.store.notifications import _NS, notification_id

#: Any text a key part can hold (surrogates cannot be stored, nor encoded: left out).
PARTS = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@given(org=PARTS, event=PARTS, contact=PARTS, channel=st.sampled_from(["sms", "email"]), recipient=PARTS)
def test_an_id_is_the_uuid5_of_its_key(
    org: str, event: str, contact: str, channel: str, recipient: str
) -> None:
    key = "\x1f".join((org, event, contact, channel, recipient))
    assert notification_id(org, event, contact, channel, recipient) == "ntf_" + uuid.uuid5(_NS, key).hex


def test_an_id_as_stored_before_stays_the_same() -> None:
    assert (
        notification_id("acme", "evt_1", "P1", "sms", "+358401234567")
        == "ntf_c06194c13e00543abaad9b90056d30b6"
    )
