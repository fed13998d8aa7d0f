"""Fuzzing the provider-signed routes with valid signatures and hostile contents: Twilio status
callbacks (hostile form values and notification ids), Vonage receipts (hostile values and
``client-ref``s) and GoCardless webhooks (hostile bodies).
Signed or not, they answer 2xx or a 4xx in the one error shape, never a 5xx."""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from vonage_http_client import Auth

from tests.fuzz import strategies as hostile
from tests.fuzz.conftest import (
    FUZZ,
    GC_SECRET,
    OTHER,
    TWILIO_TOKEN,
    VONAGE_KEY,
    VONAGE_SIGNING,
    World,
    assert_answered_well,
)
from tooling.sandboxes.gocardless import sign

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@settings(FUZZ, max_examples=30)
@given(data=st.data(), form=hostile.twilio_form)
def test_a_signed_twilio_callback_with_hostile_values_is_never_a_5xx(
    live: World, data: st.DataObject, form: dict[str, str]
) -> None:
    notification_id = data.draw(
        hostile.twilio_ids | st.just(live.other_notification), label="notification_id"
    )
    # Signed as Twilio signs it: the public URL of the callback, decoded as the api sees the path.
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        f"{live.url}/callbacks/twilio/{notification_id}", form
    )
    before = live.tenant_rows(OTHER)
    answer = live.client.post(
        f"/callbacks/twilio/{quote(notification_id, safe='')}",
        content=urlencode(form).encode(),
        headers={**FORM, "X-Twilio-Signature": signature},
    )
    assert_answered_well(answer)
    # The api only queues a report: history records it, not the request's own transaction.
    assert live.tenant_rows(OTHER) == before


@pytest.mark.stores("sqlite")
@settings(FUZZ, max_examples=20)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.sampled_from(
            [b"MessageStatus=%FF%FE", b"MessageStatus=delivered&%ZZ=1", b"\x00\xff=\xfe", b"a=" + b"%" * 500]
        ),
        hostile.deep_json_text().map(str.encode),
    ),
    content_type=st.sampled_from(
        [FORM["Content-Type"], "multipart/form-data; boundary=x", "application/json"]
    ),
)
def test_an_unsigned_twilio_callback_with_a_hostile_body_is_a_clean_4xx(
    live: World, body: bytes, content_type: str
) -> None:
    answer = live.client.post(
        f"/callbacks/twilio/{live.other_notification}", content=body, headers={"Content-Type": content_type}
    )
    assert_answered_well(answer)
    assert 400 <= answer.status_code < 500


@settings(FUZZ, max_examples=30)
@given(body=hostile.gocardless_body)
def test_a_signed_gocardless_webhook_with_a_hostile_body_is_never_a_5xx(live: World, body: bytes) -> None:
    note(f"body: {body[:300]!r}")
    answer = live.client.post(
        "/webhooks/gocardless",
        content=body,
        headers={"Content-Type": "application/json", "Webhook-Signature": sign(body, GC_SECRET)},
    )
    assert_answered_well(answer)


vonage_value = st.one_of(
    hostile.twilio_form.map(lambda form: next(iter(form.values()), "")),
    st.sampled_from(["delivered", "failed", "expired", "accepted", "0", "3", "9" * 40, "\u00b2", "\x00"]),
    st.integers(),
    st.none(),
    st.booleans(),
)


@settings(FUZZ, max_examples=30)
@given(
    data=st.data(),
    fields=st.dictionaries(
        st.sampled_from(["status", "messageId", "err-code", "msisdn", "to", "scts", "price"])
        | st.text(max_size=8),
        vonage_value,
        max_size=7,
    ),
    form=st.booleans(),
)
def test_a_signed_vonage_receipt_with_hostile_values_is_never_a_5xx_and_changes_no_tenant_s_rows(
    live: World, data: st.DataObject, fields: dict[str, object], form: bool
) -> None:
    ref = data.draw(hostile.twilio_ids | st.just(live.other_notification), label="client-ref")
    body = {k: v for k, v in fields.items() if k not in ("sig", "timestamp", "api-key")}
    body |= {"client-ref": ref, "api-key": VONAGE_KEY, "timestamp": str(int(time.time()))}
    body["sig"] = Auth(api_key=VONAGE_KEY, signature_secret=VONAGE_SIGNING).sign_params(dict(body))
    note(repr(body))
    before = live.tenant_rows(OTHER)
    if form:
        answer = live.client.post(
            "/callbacks/vonage", data={k: "" if v is None else str(v) for k, v in body.items()}
        )
    else:
        answer = live.client.post("/callbacks/vonage", json=body)
    assert_answered_well(answer)
    assert live.tenant_rows(OTHER) == before  # the api only queues a report; history records it
