"""Vonage, without a network: its answers sorted permanent / transient (never ambiguous when an
answer came), how far a failed request got, receipts read and their signatures checked with the
SDK's own code."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, ReadTimeout, SSLError
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from vonage_http_client import Auth

from infra.adapters.sms import VONAGE_PERMANENT_STATUSES, VONAGE_TRANSIENT_STATUSES, classify_vonage_error
from infra.adapters.vonage_sms import VonageSms, _next_cursor, _not_sent, _parts_refused, reference_of
from infra.errors import PermanentProviderError, TransientProviderError
from infra.settings import Settings
from producers.api.errors import ApiError
from producers.api.vonage_receipts import read_receipt, signed_fields
from schemas.notifications import Status

NID = "ntf_" + "1" * 26
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", sorted(VONAGE_PERMANENT_STATUSES))
def test_refusals_that_retrying_cannot_fix_are_permanent(status: int) -> None:
    error = classify_vonage_error(status=status, http_status=200, message="no")
    assert isinstance(error, PermanentProviderError)
    assert (error.code, error.status) == (status, 200)


@pytest.mark.parametrize("status", sorted(VONAGE_TRANSIENT_STATUSES))
def test_throttling_internal_errors_and_quota_are_transient_and_not_ambiguous(status: int) -> None:
    error = classify_vonage_error(status=status, http_status=200, message="busy")
    assert isinstance(error, TransientProviderError)
    assert not error.accepted_unknown  # an answer came: Vonage did not take the message


def test_the_two_lists_do_not_overlap_and_an_unknown_status_is_permanent() -> None:
    assert not VONAGE_PERMANENT_STATUSES & VONAGE_TRANSIENT_STATUSES
    assert isinstance(classify_vonage_error(status=99, http_status=200, message="?"), PermanentProviderError)


@pytest.mark.parametrize(
    ("http", "kind"),
    [
        (429, TransientProviderError),
        (500, TransientProviderError),
        (503, TransientProviderError),
        (401, PermanentProviderError),
        (404, PermanentProviderError),
    ],
)
def test_http_errors_are_sorted_by_status_and_keep_retry_after(http: int, kind: type) -> None:
    error = classify_vonage_error(status=None, http_status=http, message="x", retry_after=7.0)
    assert isinstance(error, kind)
    if kind is TransientProviderError:
        assert error.retry_after == 7.0
        assert not error.accepted_unknown


def test_a_failure_before_the_request_went_out_is_not_sent_and_any_other_is_ambiguous() -> None:
    refused = NewConnectionError(None, "refused")  # type: ignore[arg-type]
    assert _not_sent(RequestsConnectionError(MaxRetryError(None, "/sms/json", refused)))  # type: ignore[arg-type]
    assert _not_sent(ConnectTimeout())
    assert _not_sent(SSLError())
    assert not _not_sent(ReadTimeout())
    assert not _not_sent(RequestsConnectionError(ProtocolError("Connection aborted.", "RemoteDisconnected")))
    assert not _not_sent(RequestsConnectionError())


def test_a_long_message_some_of_whose_parts_went_out_is_permanent_never_resent() -> None:
    some = {"message-count": "2", "messages": [{"status": "0"}, {"status": "1", "error-text": "busy"}]}
    assert isinstance(_parts_refused(some), PermanentProviderError)
    none = {"message-count": "2", "messages": [{"status": "1"}, {"status": "1"}]}
    assert isinstance(_parts_refused(none), TransientProviderError)
    assert isinstance(_parts_refused("garbage"), PermanentProviderError)


def test_the_notification_id_is_read_from_herald_s_callback_url_only() -> None:
    assert reference_of(f"https://herald.example/callbacks/twilio/{NID}") == NID
    assert reference_of("https://herald.example/callbacks/twilio/not-an-id") is None
    assert reference_of(None) is None


def test_a_message_vonage_cannot_take_is_refused_before_anything_is_sent() -> None:
    adapter = VonageSms("key", "secret", rest_host="127.0.0.1:9", api_host="127.0.0.1:9", timeout=1)
    try:
        with pytest.raises(PermanentProviderError, match="client_ref"):
            adapter.send(
                to="+447700900999", sender="ACME", body="hi", status_callback=None, reference="x" * 101
            )
    finally:
        adapter.close()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("delivered", Status.DELIVERED),
        ("accepted", Status.SENT),
        ("buffered", Status.SENT),
        ("expired", Status.UNDELIVERED),
        ("failed", Status.FAILED),
        ("rejected", Status.FAILED),
    ],
)
def test_a_receipt_moves_the_notification_named_by_its_client_ref(raw: str, expected: Status) -> None:
    fields = {"client-ref": NID, "status": raw, "messageId": "abc-123", "err-code": "0"}
    report = read_receipt(fields, NOW).report
    assert report is not None
    assert (report.notification_id, report.status, report.provider_id, report.error_code) == (
        NID,
        expected,
        "abc-123",
        None,
    )
    assert report.source == "vonage_receipt"


@pytest.mark.parametrize("ref", ["", "nope", "ntf_0\u202e", "ntf_" + "a" * 4000, "NTF_1"])
def test_a_receipt_that_names_no_notification_makes_no_report(ref: str) -> None:
    assert read_receipt({"client-ref": ref, "status": "delivered"}, NOW).report is None


def test_unusable_fields_are_dropped_and_named_and_the_status_kept() -> None:
    fields = {"client-ref": NID, "status": "failed", "messageId": "x\r\nInjected: 1", "err-code": "\u00b2"}
    report = read_receipt(fields, NOW).report
    assert report is not None
    assert report.status == Status.FAILED
    assert report.provider_id is None
    assert report.error_code is None
    assert report.detail is not None
    assert "messageId" in report.detail
    assert "err-code" in report.detail


def test_a_status_that_moves_nothing_makes_no_report() -> None:
    assert read_receipt({"client-ref": NID, "status": "weird"}, NOW).report is None


def test_a_receipt_signed_as_vonage_signs_checks_with_the_sdk_and_a_changed_field_does_not() -> None:
    for method in ("md5", "sha1", "sha256", "sha512"):
        signer = Auth(api_key="key", signature_secret="s3cret", signature_method=method)  # type: ignore[arg-type]
        fields = {"client-ref": NID, "status": "delivered", "timestamp": str(int(time.time())), "nonce": "n1"}
        fields["sig"] = signer.sign_params(dict(fields))
        assert signer.check_signature(dict(fields))
        assert not signer.check_signature({**fields, "status": "failed"})
        other = Auth(api_key="key", signature_secret="other", signature_method=method)  # type: ignore[arg-type]
        assert not other.check_signature(dict(fields))


def test_a_json_receipt_with_a_nested_value_is_refused_naming_the_field() -> None:
    assert signed_fields({"status": "delivered", "n": 1, "none": None}) == {
        "status": "delivered",
        "n": "1",
        "none": "",
    }
    with pytest.raises(ApiError, match="status"):
        signed_fields({"status": {"deep": ["x"]}})


def test_the_reports_api_s_next_page_is_followed_by_its_cursor_and_the_last_has_none() -> None:
    page = {
        "_links": {"next": {"href": "https://api.nexmo.com/v2/reports/records?account_id=k&cursor=c2%3D"}}
    }
    assert _next_cursor(page) == "c2="
    assert _next_cursor({"_links": {"self": {"href": "/v2/reports/records"}}}) is None
    assert _next_cursor({"_links": "junk"}) is None
    assert _next_cursor({}) is None


@pytest.mark.parametrize("host", ["https://rest.nexmo.com", "rest.nexmo.com/sms", "", "a b", "host:123456"])
def test_a_vonage_host_with_a_scheme_or_a_path_is_refused_naming_the_setting(host: str) -> None:
    with pytest.raises(ValidationError, match="vonage_rest_url"):
        Settings(vonage_rest_url=host, _env_file=None)  # type: ignore[call-arg]


def test_the_vonage_hosts_default_to_vonage_s_and_a_sandbox_s_host_and_port_is_taken() -> None:
    settings = Settings(vonage_rest_url="127.0.0.1:8028", _env_file=None)  # type: ignore[call-arg]
    assert (settings.vonage_rest_url, settings.vonage_api_url) == ("127.0.0.1:8028", "api.nexmo.com")
    assert settings.vonage_signature_method == "md5"
