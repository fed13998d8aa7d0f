"""Twilio status callbacks with careless or hostile input, correctly signed: never a 5xx, errors in
the one shape, a report for what is sound, nothing published for what is not ours. Both stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

import producers.api.callbacks
from infra.bootstrap import Services
from producers.api.app import create_app
from schemas.messages import DeliveryStatusReported
from tests.integration.stored import claimed_sms

TOKEN = "twilio-test-token"
PUBLIC = "http://testserver"
MAX_BODY = 64 * 1024


@dataclass
class Callbacks:
    """The app on the ``store`` fixture's database, a real notification, and what was published."""

    client: TestClient
    nid: str
    published: list[DeliveryStatusReported]

    def post(self, nid: str, form: dict[str, str], signed: bool = True) -> Any:
        """A callback for ``nid``, signed as Twilio signs it (the URL it was given, the params)."""
        headers = {}
        if signed:
            url = f"{PUBLIC}/callbacks/twilio/{nid}"
            headers["X-Twilio-Signature"] = RequestValidator(TOKEN).compute_signature(url, form)
        return self.client.post(f"/callbacks/twilio/{nid}", data=form, headers=headers)


@pytest.fixture
def callbacks(store: Services, monkeypatch: pytest.MonkeyPatch) -> Callbacks:
    nid = claimed_sms(store)
    published: list[DeliveryStatusReported] = []

    def publish(emit: Any, report: DeliveryStatusReported, patience: float = 0) -> bool:
        published.append(report)
        return True

    monkeypatch.setattr(producers.api.callbacks, "publish_patiently", publish)
    settings_ = store.settings.model_copy(
        update={"twilio_auth_token": SecretStr(TOKEN), "public_url": PUBLIC, "api_max_body_bytes": MAX_BODY}
    )
    return Callbacks(TestClient(create_app(settings_, store)), nid, published)


def _shaped(answer: Any) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


@pytest.mark.parametrize(
    "nid",
    [
        "ntf_0",  # well formed, but no such notification
        "ntf_" + "0" * 36,  # the longest an id can be, still unknown
        "ntf_" + "a" * 4000,  # huge
        "nope",
        "NTF_0",
        "ntf_0'; drop table notifications; --",
        "ntf_0\u202egnp.exe",  # a bidi override
        "ntf_\u0660",  # an Arabic-Indic digit
    ],
)
def test_a_signed_callback_for_a_notification_we_do_not_have_is_acknowledged_and_dropped(
    callbacks: Callbacks, nid: str
) -> None:
    answer = callbacks.post(nid, {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"})
    assert answer.status_code == 204, answer.text
    assert callbacks.published == []


def test_a_signed_callback_for_a_notification_we_have_is_published(callbacks: Callbacks) -> None:
    sid = "SM" + "a1" * 16
    answer = callbacks.post(
        callbacks.nid, {"MessageSid": sid, "MessageStatus": "failed", "ErrorCode": "30003"}
    )
    assert answer.status_code == 204
    (report,) = callbacks.published
    assert (report.notification_id, report.status, report.provider_id, report.error_code) == (
        callbacks.nid,
        "failed",
        sid,
        30003,
    )
    assert report.detail is None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("ErrorCode", "x30003", "ErrorCode"),
        ("ErrorCode", "9" * 40, "ErrorCode"),
        ("ErrorCode", "\u00b2", "ErrorCode"),  # str.isdigit() says yes, int() says no
        ("ErrorCode", "-1", "ErrorCode"),
        ("MessageSid", "S" * 100, "MessageSid"),
        ("MessageSid", "SM1\r\nX-Injected: 1", "MessageSid"),
    ],
)
def test_a_field_that_cannot_be_used_is_dropped_and_named_and_the_status_still_recorded(
    callbacks: Callbacks, field: str, value: str, named: str
) -> None:
    form = {"MessageSid": "SM" + "0" * 32, "MessageStatus": "undelivered", "ErrorCode": "30005", field: value}
    answer = callbacks.post(callbacks.nid, form)
    assert answer.status_code == 204, answer.text
    (report,) = callbacks.published
    assert report.status == "undelivered"
    assert report.detail is not None
    assert named in report.detail
    if field == "ErrorCode":
        assert (report.error_code, report.provider_id) == (None, "SM" + "0" * 32)
    else:
        assert (report.error_code, report.provider_id) == (30005, None)


@pytest.mark.parametrize(
    "form",
    [
        {},  # nothing at all
        {"MessageSid": "SM1"},  # no MessageStatus
        {"MessageSid": "SM1", "MessageStatus": "queued"},  # a status that moves nothing
        {"MessageSid": "SM1", "MessageStatus": "read"},
        {"MessageSid": "SM1", "MessageStatus": "DELIVERED"},
        {"MessageSid": "SM1", "MessageStatus": "x" * 20000},
        {"MessageSid": "SM1", "MessageStatus": "delivered\x00"},
    ],
)
def test_a_callback_without_a_status_we_track_is_acknowledged_and_publishes_nothing(
    callbacks: Callbacks, form: dict[str, str]
) -> None:
    answer = callbacks.post(callbacks.nid, form)
    assert answer.status_code == 204, answer.text
    assert callbacks.published == []


def test_odd_forms_are_answered_in_the_error_shape_or_acknowledged(callbacks: Callbacks) -> None:
    nested = {f"a[{i}][b][c]": "x" for i in range(500)} | {"MessageStatus": "delivered"}
    assert callbacks.post(callbacks.nid, nested).status_code == 204  # nested-looking keys are just keys
    assert len(callbacks.published) == 1
    many = {f"f{i}": "x" for i in range(2000)} | {"MessageStatus": "delivered"}
    too_many = callbacks.post(callbacks.nid, many)  # Twilio sends a score of fields, not thousands
    assert too_many.status_code == 400
    assert "Too many fields" in _shaped(too_many)["message"]
    huge = callbacks.post(callbacks.nid, {"MessageStatus": "sent", "Body": "x" * (MAX_BODY + 1)})
    assert huge.status_code == 413
    assert _shaped(huge)["code"] == "payload_too_large"
    broken = callbacks.client.post(
        f"/callbacks/twilio/{callbacks.nid}",
        content=b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b", "X-Twilio-Signature": "x"},
    )
    assert 400 <= broken.status_code < 500
    _shaped(broken)
    latin1 = callbacks.client.post(
        f"/callbacks/twilio/{callbacks.nid}",
        content=b"MessageStatus=delivered&Body=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert latin1.status_code == 403
    assert _shaped(latin1)["code"] == "forbidden"
    unsigned = callbacks.post(callbacks.nid, {"MessageStatus": "delivered"}, signed=False)
    assert unsigned.status_code == 403
    _shaped(unsigned)
    assert len(callbacks.published) == 1


hostile_text = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["", "delivered", "failed", "sent", "30003", "9" * 30, "\u00b2", "\x00", "\r\n"]),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    nid=st.one_of(
        st.just("KNOWN"),
        st.text(
            st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/?#%"), min_size=1, max_size=60
        ),
    ),
    form=st.dictionaries(
        st.sampled_from(["MessageSid", "MessageStatus", "ErrorCode", "SmsStatus", "To"])
        | st.text(max_size=10),
        hostile_text,
        max_size=6,
    ),
)
def test_any_signed_callback_is_answered_without_a_5xx_and_publishes_only_valid_reports(
    callbacks: Callbacks, nid: str, form: dict[str, str]
) -> None:
    nid = callbacks.nid if nid == "KNOWN" else nid
    if nid.strip(".") == "":
        nid = callbacks.nid  # "." and ".." are a URL's own syntax: the client would send another path
    before = len(callbacks.published)
    answer = callbacks.post(nid, form)
    assert answer.status_code < 500, answer.text
    if answer.status_code != 204:
        _shaped(answer)
    for report in callbacks.published[before:]:
        assert report.notification_id == callbacks.nid  # only for a notification we have
        DeliveryStatusReported.model_validate(report.body())  # and one the history stage decodes
