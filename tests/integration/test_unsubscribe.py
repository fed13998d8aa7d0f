"""One-click unsubscribe end to end: the email captured at the SMTP sandbox carries both
List-Unsubscribe headers; POSTing the one-click URL switches the category off; the next invoice's
email is skipped ``category_off`` and history shows the consent row that did it. And a hard bounce
suppresses the address."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.consent import consent_trail
from infra.store.history import invoice_history
from infra.store.preferences import update_preference_settings
from infra.store.suppression import list_suppressions
from infra.store.tables import contact_emails, notifications
from producers.api.app import create_app
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, email_customer, invoice_created
from tests.integration.conftest import import_customers, publish

PUBLIC = "https://herald.acme.example"


@pytest.fixture
def pipeline_fields() -> dict[str, Any]:
    return {"public_url": PUBLIC, "link_secret": SecretStr("integration-secret")}


def _email(services: Services, invoice: str) -> dict[str, Any] | None:
    with services.reading() as conn:
        row = (
            conn.execute(
                select(notifications).where(
                    notifications.c.channel == "email", notifications.c.invoice_id == invoice
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


def test_one_click_unsubscribe_switches_the_category_off_and_the_next_invoice_email_is_skipped(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    import_customers(pipeline, email_customer("aino@example.fi", locale="fi"))
    publish(pipeline.settings, invoice_created("evt_1", id="INV-1"))
    wait_for(lambda: (r := _email(pipeline, "INV-1")) and r["status"] == Status.SENT, what="the first email")
    (message,) = smtp_sandbox.messages
    header = message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (https_url,) = re.findall(r"<(https://[^>]+)>", header)
    (mailto,) = re.findall(r"<(mailto:[^>]+)>", header)
    assert https_url.startswith(f"{PUBLIC}/preferences/acme/")
    assert https_url.endswith("/unsubscribe?kind=invoice")
    assert mailto.startswith("mailto:billing@acme.example?subject=")
    # Every email body carries the preference link too (without the /unsubscribe).
    page_url = https_url.removesuffix("/unsubscribe?kind=invoice")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert page_url in text
    assert page_url.replace("&", "&amp;") in html

    client = TestClient(create_app(pipeline.settings, pipeline))
    parts = urlsplit(https_url)
    answer = client.post(
        f"{parts.path}?{parts.query}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    with pipeline.reading() as conn:
        categories = conn.execute(
            select(contact_emails.c.categories).where(contact_emails.c.address == "aino@example.fi")
        ).scalar_one()
        trail = consent_trail(conn, "acme", "P1")
    assert categories["new_invoice"] is False
    assert categories["payment_confirmation"] is True  # only the email's own kind
    (row,) = trail
    assert row["toggle"] == "aino@example.fi new_invoice"
    assert (row["old"], row["new"], row["source"]) == (True, False, "one_click")
    assert row["actor"].startswith("link:k1:")

    publish(pipeline.settings, invoice_created("evt_2", id="INV-2"))
    skipped = wait_for(lambda: _email(pipeline, "INV-2"), what="the second invoice decided")
    assert skipped["reason"] == "category_off"
    assert skipped["status"] == Status.SKIPPED
    with pipeline.reading() as conn:
        history = invoice_history(conn, "INV-2", "acme")
    (decided,) = [e for e in history["timeline"] if e["what"] == "decided" and e["channel"] == "email"]
    assert decided["consent"]["id"] == row["id"]
    assert decided["consent"]["source"] == "one_click"
    assert len(smtp_sandbox.messages) == 1  # nothing more was sent


def test_a_hard_bounce_suppresses_the_address_until_an_operator_lifts_it(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    import_customers(pipeline, email_customer("reject-me@example.fi"))
    publish(pipeline.settings, invoice_created("evt_1", id="INV-1"))
    failed = wait_for(
        lambda: (r := _email(pipeline, "INV-1")) and r["status"] == Status.FAILED and r, what="the bounce"
    )
    assert failed["error_code"] == 550
    with pipeline.reading() as conn:
        (suppressed,) = list_suppressions(conn, "acme")
        (row,) = consent_trail(conn, "acme", "P1")
    assert suppressed["address"] == "reject-me@example.fi"
    assert "550" in suppressed["reason"]
    assert (row["toggle"], row["source"], row["new"]) == ("reject-me@example.fi suppressed", "bounce", True)

    publish(pipeline.settings, invoice_created("evt_2", id="INV-2"))
    skipped = wait_for(lambda: _email(pipeline, "INV-2"), what="the second invoice decided")
    assert skipped["reason"] == "suppressed"
    with pipeline.reading() as conn:
        history = invoice_history(conn, "INV-2", "acme")
    (decided,) = [e for e in history["timeline"] if e["what"] == "decided" and e["channel"] == "email"]
    assert decided["consent"]["source"] == "bounce"


def test_an_organisation_may_put_a_short_preference_link_in_its_sms(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    with pipeline.transaction() as conn:
        update_preference_settings(conn, "acme", {"sms_link": True})
    import_customers(pipeline, customer())  # C1 with its primary contact P1, texted
    publish(pipeline.settings, invoice_created("evt_1", id="INV-1"))
    (sms,) = wait_for(lambda: twilio_sandbox.messages(), what="the SMS")
    (code,) = re.findall(rf"{re.escape(PUBLIC)}/p/([A-Za-z0-9_-]+)$", sms["body"])
    client = TestClient(create_app(pipeline.settings, pipeline))
    opened = client.get(f"/p/{code}")  # follows the redirect to the signed page
    assert opened.status_code == 200
    assert 'name="sms|C1"' in opened.text
    assert opened.url.path.startswith("/preferences/acme/")
    for unknown in ("nope", "x" * 17, code[:-1] + ("A" if code[-1] != "A" else "B")):
        refused = client.get(f"/p/{unknown}")
        assert refused.status_code == 410
        assert "sms|" not in refused.text
    with pipeline.reading() as conn:
        stored = conn.execute(select(notifications.c.body).where(notifications.c.channel == "sms")).scalar()
    assert stored == sms["body"]  # what was stored (and counted for credit) is what was sent
