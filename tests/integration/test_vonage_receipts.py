"""Vonage delivery receipts at ``POST /callbacks/vonage``, on both stores: signed ones move history
forward (from the sandbox, through the real api, the broker and the history stage); unsigned,
forged, stale and careless ones are refused in the error shape or dropped, never a 5xx, and a
receipt never reaches a notification that is not the one its message was sent for."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import select
from vonage_http_client import Auth

import producers.api.callbacks
from infra.adapters.vonage_sms import VonageSms
from infra.bootstrap import Services
from infra.store.tables import notifications, status_changes
from producers.api.app import create_app
from schemas.messages import DeliveryStatusReported
from tests.conftest import wait_for
from tests.integration.stored import claimed_sms, routed_notification
from tooling.local.ports import free_port
from tooling.sandboxes.vonage import VonageConfig, VonageSandbox

KEY, SECRET, SIGNING = "abcd1234", "sandbox-secret", "signing-secret"
MESSAGE_ID = "0a1b2c3d-0000-4000-8000-000000000001"
MAX_BODY = 64 * 1024
SIGNER = Auth(api_key=KEY, signature_secret=SIGNING)


def signed(fields: dict[str, Any], signer: Auth = SIGNER, **overrides: Any) -> dict[str, Any]:
    """``fields`` with a fresh timestamp and nonce, signed as Vonage signs a receipt."""
    body = {"api-key": KEY, "timestamp": str(int(time.time())), "nonce": "n0nce", **fields, **overrides}
    body["sig"] = signer.sign_params({k: v for k, v in body.items() if k != "sig"})
    return body


@dataclass
class Receipts:
    """The app on the ``store`` fixture's database, our SMS (sent as ``MESSAGE_ID``), an email
    notification, and what was published."""

    client: TestClient
    nid: str
    email_nid: str
    published: list[DeliveryStatusReported]

    def post(self, body: dict[str, Any], form: bool = False) -> Any:
        if form:
            return self.client.post("/callbacks/vonage", data=body)
        # json.dumps writes NaN and ±Infinity as the bare literals Python's parser takes: a careless
        # sender's body, which httpx's own encoder would refuse to send.
        content = json.dumps(body).encode()
        return self.client.post(
            "/callbacks/vonage", content=content, headers={"Content-Type": "application/json"}
        )

    def receipt(self, **fields: Any) -> dict[str, Any]:
        return signed(
            {
                "client-ref": self.nid,
                "messageId": MESSAGE_ID,
                "status": "delivered",
                "err-code": "0",
                "msisdn": "358401234567",
                "to": "ACME",
                **fields,
            }
        )


def _app_settings(services: Services, **fields: Any) -> Any:
    return services.settings.model_copy(
        update={
            "vonage_api_key": KEY,
            "vonage_signature_secret": SecretStr(SIGNING),
            "api_max_body_bytes": MAX_BODY,
            **fields,
        }
    )


@pytest.fixture
def receipts(store: Services, monkeypatch: pytest.MonkeyPatch) -> Receipts:
    nid = claimed_sms(store, provider_id=MESSAGE_ID)
    email_nid = routed_notification(store, "email", "someone@example.com", event_id="evt_email")
    published: list[DeliveryStatusReported] = []

    def publish(emit: Any, report: DeliveryStatusReported, patience: float = 0) -> bool:
        published.append(report)
        return True

    monkeypatch.setattr(producers.api.callbacks, "publish_patiently", publish)
    return Receipts(TestClient(create_app(_app_settings(store), store)), nid, email_nid, published)


def _shaped(answer: Any) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_a_signed_receipt_for_our_message_is_published(receipts: Receipts, form: bool) -> None:
    answer = receipts.post(receipts.receipt(status="failed", **{"err-code": "3"}), form=form)
    assert answer.status_code == 204, answer.text
    (report,) = receipts.published
    assert (report.notification_id, report.status, report.provider_id, report.error_code, report.source) == (
        receipts.nid,
        "failed",
        MESSAGE_ID,
        3,
        "vonage_receipt",
    )


@pytest.mark.parametrize("form", [False, True], ids=["json", "form"])
def test_unsigned_forged_stale_and_foreign_receipts_are_refused_with_403(
    receipts: Receipts, form: bool
) -> None:
    good = receipts.receipt()
    unsigned = {k: v for k, v in good.items() if k != "sig"}
    forged = receipts.receipt()
    forged["status"] = "failed"  # changed after signing
    other_secret = signed(
        {"client-ref": receipts.nid, "status": "delivered"}, Auth(api_key=KEY, signature_secret="not-ours")
    )
    stale = receipts.receipt(timestamp=str(int(time.time()) - 3600))
    other_key = signed({"client-ref": receipts.nid, "status": "delivered"}, **{"api-key": "someone-else"})
    no_stamp = {k: v for k, v in good.items() if k != "timestamp"}
    for body in (
        unsigned,
        forged,
        other_secret,
        stale,
        other_key,
        no_stamp,
        {**good, "sig": "zz" * 16},
        {**good, "sig": "é" * 32},
        {**good, "sig": ""},
    ):
        answer = receipts.post(body, form=form)
        assert answer.status_code == 403, (body, answer.text)
        assert _shaped(answer)["code"] == "forbidden"
    assert receipts.published == []


def test_with_no_signature_secret_set_every_receipt_is_refused(store: Services) -> None:
    client = TestClient(create_app(_app_settings(store, vonage_signature_secret=None), store))
    answer = client.post("/callbacks/vonage", json=signed({"client-ref": "ntf_0", "status": "delivered"}))
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "ref",
    [
        "ntf_0",
        "ntf_" + "0" * 36,
        "ntf_" + "a" * 4000,
        "nope",
        "ntf_0'; drop table notifications; --",
        "ntf_0\u202egnp.exe",
        "ntf_\u0660",
        "",
        "ntf_\x00\x01",
    ],
)
def test_a_signed_receipt_for_a_notification_we_do_not_have_is_acknowledged_and_dropped(
    receipts: Receipts, ref: str
) -> None:
    answer = receipts.post(receipts.receipt(**{"client-ref": ref}))
    assert answer.status_code == 204, answer.text
    assert receipts.published == []


def test_a_receipt_never_reaches_another_notification_than_its_message_s(receipts: Receipts) -> None:
    # Our SMS recorded MESSAGE_ID: a receipt naming it with another message's id is not its.
    other_message = receipts.post(receipts.receipt(messageId="ffffffff-0000-4000-8000-000000000009"))
    assert other_message.status_code == 204
    # An email notification's id as client-ref: not an SMS of ours.
    email = receipts.post(receipts.receipt(**{"client-ref": receipts.email_nid}))
    assert email.status_code == 204
    assert receipts.published == []


def test_careless_bodies_are_answered_in_the_error_shape_never_a_5xx(receipts: Receipts) -> None:
    client = receipts.client

    def raw(content: bytes, kind: str) -> Any:
        return client.post("/callbacks/vonage", content=content, headers={"Content-Type": kind})

    for content, kind, status in (
        (b"[1, 2]", "application/json", 400),
        (b"not json", "application/json", 400),
        (b"\xff\xfe\x00binary", "application/json", 400),
        (b'"a string"', "application/json", 400),
        (json.dumps({"status": {"deep": [1]}}).encode(), "application/json", 400),
        (b"status=delivered", "text/plain", 415),
        (b"\x00\x01\x02", "application/octet-stream", 415),
        (b"x" * (MAX_BODY + 1), "application/json", 413),
    ):
        answer = raw(content, kind)
        assert answer.status_code == status, (content[:40], answer.text)
        _shaped(answer)
    with_file = client.post(
        "/callbacks/vonage", files={"status": ("x.bin", b"\x00\xff", "application/octet-stream")}
    )
    assert with_file.status_code == 400
    _shaped(with_file)
    latin1 = raw(
        b"status=delivered&client-ref=\xff\xfe&sig=" + b"a" * 32, "application/x-www-form-urlencoded"
    )
    assert latin1.status_code == 403  # read, then refused: not signed by us
    _shaped(latin1)
    nested = json.dumps({"a": 1} | {str(i): {"x": i} for i in range(3)}).encode()
    assert raw(nested, "application/json").status_code == 400
    deep = b"[" * 10000 + b"]" * 10000
    assert raw(deep, "application/json").status_code == 400
    assert receipts.published == []


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("err-code", "x3", "err-code"),
        ("err-code", "9" * 40, "err-code"),
        ("err-code", "\u00b2", "err-code"),
        ("messageId", "M" * 100, "messageId"),
        ("messageId", "m1\r\nX-Injected: 1", "messageId"),
    ],
)
def test_a_field_that_cannot_be_used_is_dropped_and_named_and_the_status_still_recorded(
    receipts: Receipts, field: str, value: str, named: str
) -> None:
    answer = receipts.post(receipts.receipt(status="expired", **{field: value}))
    assert answer.status_code == 204, answer.text
    (report,) = receipts.published
    assert report.status == "undelivered"
    assert report.detail is not None
    assert named in report.detail


hostile = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "delivered", "failed", "accepted", "3", "9" * 30, "\u00b2", "\x00", "\r\n"]),
    st.integers(),
    st.none(),
    st.booleans(),
    st.floats(),  # NaN and ±Infinity included: sent as JSON's non-standard literals
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.dictionaries(
        st.sampled_from(["client-ref", "status", "messageId", "err-code", "msisdn", "to", "scts"])
        | st.text(max_size=8),
        hostile,
        max_size=7,
    ),
    known=st.booleans(),
    form=st.booleans(),
)
def test_any_signed_receipt_is_answered_without_a_5xx_and_publishes_only_our_notifications(
    receipts: Receipts, fields: dict[str, Any], known: bool, form: bool
) -> None:
    if known:
        fields["client-ref"] = receipts.nid
    body = signed({k: v for k, v in fields.items() if k not in ("sig", "timestamp", "api-key")})
    if form:
        body = {k: "" if v is None else str(v) for k, v in body.items()}
    before = len(receipts.published)
    answer = receipts.post(body, form=form)
    assert answer.status_code < 500, answer.text
    if answer.status_code != 204:
        _shaped(answer)
    for report in receipts.published[before:]:
        assert report.notification_id == receipts.nid
        DeliveryStatusReported.model_validate(report.body())


# --- From the sandbox, through the api, the broker and history -------------------------------


@pytest.fixture
def public_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def pipeline_fields(public_url: str) -> dict[str, Any]:
    return {"public_url": public_url, "vonage_api_key": KEY, "vonage_signature_secret": SecretStr(SIGNING)}


@pytest.fixture
def api_url(public_url: str, pipeline: Services) -> Iterator[str]:
    app = create_app(pipeline.settings, pipeline)
    port = urlsplit(public_url).port
    assert port is not None
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, what="the HTTP app")
    yield public_url
    server.should_exit = True
    thread.join(10)


def _statuses(services: Services, nid: str) -> list[str]:
    with services.reading() as conn:
        rows = conn.execute(
            select(status_changes.c.status)
            .where(status_changes.c.notification_id == nid)
            .order_by(status_changes.c.id)
        )
        return [r.status for r in rows]


@pytest.mark.parametrize("receipt_format", ["json", "form"])
def test_sandbox_receipts_move_the_notification_to_delivered_through_history(
    api_url: str, pipeline: Services, receipt_format: str
) -> None:
    config = VonageConfig(KEY, SECRET, signature_secret=SIGNING, receipt_format=receipt_format)
    with VonageSandbox(config) as sandbox:
        nid = claimed_sms(pipeline)
        adapter = VonageSms(
            KEY,
            SECRET,
            rest_host=sandbox.host,
            api_host=sandbox.host,
            timeout=2,
            ca_bundle=sandbox.ca_file,
            receipts_url=f"{api_url}/callbacks/vonage",
        )
        try:
            sent = adapter.send(
                to="+358401234567", sender="ACME", body="hi", status_callback="yes", reference=nid
            )
        finally:
            adapter.close()

        def status() -> str | None:
            with pipeline.reading() as conn:
                return conn.execute(select(notifications.c.status).where(notifications.c.id == nid)).scalar()

        wait_for(lambda: status() == "delivered", timeout=30, what="delivered via the sandbox's receipts")
    assert "delivered" in _statuses(pipeline, nid)
    with pipeline.reading() as conn:
        sources = {
            r.source
            for r in conn.execute(
                select(status_changes.c.source).where(status_changes.c.notification_id == nid)
            )
        }
    assert "vonage_receipt" in sources
    assert sent.provider_id


@pytest.mark.parametrize(
    "literal", [float("nan"), float("inf"), float("-inf")], ids=["NaN", "Infinity", "-Infinity"]
)
def test_a_non_standard_json_number_in_a_signed_receipt_is_never_a_5xx(
    receipts: Receipts, literal: float
) -> None:
    for name in ("err-code", "status", "client-ref", "messageId"):
        answer = receipts.post(receipts.receipt(**{name: literal}))
        assert answer.status_code < 500, answer.text
        if answer.status_code != 204:
            _shaped(answer)
    assert all(report.notification_id == receipts.nid for report in receipts.published)
