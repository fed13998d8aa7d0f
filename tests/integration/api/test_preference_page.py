"""The hosted preference page, one-click unsubscribe, SMS keywords and the consent trail over
HTTP, on both stores: what a contact sees and changes, and what every bad link gets instead."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from infra.bootstrap import Services
from infra.link_tokens import LinkSigner
from infra.store.api_keys import create_key
from infra.store.consent import consent_trail
from infra.store.directory import upsert_customer
from infra.store.organisations import update_org
from infra.store.preferences import update_preference_settings
from infra.store.tables import contact_emails, contacts, customer_contacts
from producers.api.app import create_app
from schemas.access import Level
from schemas.directory import CustomerRecord

PUBLIC = "https://herald.acme.example"
SECRET = "page-secret"
TWILIO_TOKEN = "test-token"
AINO = {
    "contact_id": "P1",
    "primary": True,
    "name": "Aino Virtanen",
    "mobile": "+358401234567",
    "locale": "fi",
    "emails": [{"address": "aino@example.fi"}, {"address": "aino.work@example.fi"}],
}


class Page:
    def __init__(self, store: Services) -> None:
        self.store = store
        self.signer = LinkSigner("k1", SECRET.encode())
        settings = store.settings.model_copy(
            update={
                "link_secret": SecretStr(SECRET),
                "public_url": PUBLIC,
                "twilio_auth_token": SecretStr(TWILIO_TOKEN),
                "twilio_from": "+15005550006",
            }
        )
        self.client = TestClient(create_app(settings, store))

    def url(self, org: str = "acme", contact: str = "P1", address: str = "aino@example.fi") -> str:
        return f"/preferences/{org}/{self.signer.sign(org, contact, address)}"

    def toggles(self, address: str) -> dict[str, Any]:
        with self.store.reading() as conn:
            row = conn.execute(
                select(contact_emails.c.notify, contact_emails.c.categories).where(
                    contact_emails.c.org_id == "acme", contact_emails.c.address == address
                )
            ).one()
        return {"notify": row.notify, **row.categories}

    def account_sms(self, customer: str) -> bool | None:
        with self.store.reading() as conn:
            value = conn.execute(
                select(customer_contacts.c.sms_enabled).where(
                    customer_contacts.c.org_id == "acme",
                    customer_contacts.c.customer_id == customer,
                    customer_contacts.c.contact_id == "P1",
                )
            ).scalar()
        return None if value is None else bool(value)

    def trail(self, org: str = "acme", contact: str = "P1") -> list[dict[str, Any]]:
        with self.store.reading() as conn:
            return consent_trail(conn, org, contact)


def _record(org: str, customer: str, name: str, contact: dict[str, Any]) -> CustomerRecord:
    return CustomerRecord.model_validate(
        {"org_id": org, "customer_id": customer, "name": name, "contacts": [contact]}
    )


@pytest.fixture
def page(store: Services) -> Page:
    """Aino (P1) of acme ("Acme Oy") in two accounts, C1 and C2, with two addresses; acme requires
    payment reminders; another organisation has a contact of the same id."""
    with store.transaction() as conn:
        update_org(conn, "acme", {"name": "Acme Oy"})
        update_preference_settings(
            conn,
            "acme",
            {"brand_colour": "#aa3300", "required_categories": ["pending_reminders"]},
        )
        upsert_customer(conn, _record("acme", "C1", "Kotitalous", AINO), region="FI")
        upsert_customer(conn, _record("acme", "C2", "Mökki", AINO), region="FI")
        other = {**AINO, "name": "Other Person", "emails": [{"address": "other@example.fi"}]}
        upsert_customer(conn, _record("other", "C9", "Other", other), region="FI")
    return Page(store)


def _labels_cover_inputs(html: str) -> None:
    ids = set(re.findall(r'<input type="checkbox" id="([^"]+)"', html))
    fors = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids
    assert ids <= fors


def test_the_page_shows_every_address_and_account_in_the_contacts_language(page: Page) -> None:
    answer = page.client.get(page.url())
    assert answer.status_code == 200
    html = answer.text
    assert '<html lang="fi">' in html
    assert "Ilmoitusasetuksesi" in html
    assert "Acme Oy" in html
    assert "#aa3300" in html
    assert "<script" not in html.lower()
    assert html.count("<fieldset>") >= 3
    assert "<legend>" in html
    for address in ("aino@example.fi", "aino.work@example.fi"):
        assert f'name="notify|{address}"' in html
        assert f'name="new_invoice|{address}"' in html
        assert f'name="refunds|{address}"' in html
        # Required by the organisation: shown, ticked, locked, with the reason.
        assert f'name="pending_reminders|{address}"' not in html
    assert html.count("Maksumuistutukset (Pakollinen)") == 2
    assert "disabled" in html
    assert "Acme Oy on velvollinen lähettämään nämä." in html
    assert 'name="sms|C1"' in html
    assert 'name="sms|C2"' in html
    assert "Mökki" in html
    _labels_cover_inputs(html)
    assert answer.headers["Cache-Control"] == "no-store"
    assert "form-action 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(("locale", "word"), [("en", "Your notification preferences"), ("ja", "通知の設定")])
def test_the_page_speaks_english_and_japanese_too(page: Page, locale: str, word: str) -> None:
    with page.store.transaction() as conn:
        conn.execute(contacts.update().where(contacts.c.contact_id == "P1").values(locale=locale))
    html = page.client.get(page.url()).text
    assert f'<html lang="{locale}">' in html
    assert word in html


def _form(page: Page, url: str, **drop: bool) -> dict[str, str]:
    """The form as the page offers it, every box as it stands, less the ones named in ``drop``."""
    html = page.client.get(url).text
    fields = {"token": url.rsplit("/", 1)[1], "form": "preferences"}
    for name in re.findall(r'name="([^"]+)" value="on" checked', html):
        fields[name] = "on"
    for name in drop:
        fields.pop(name, None)
    return fields


def test_saving_switches_a_category_and_one_accounts_sms_off_and_says_what_changed(page: Page) -> None:
    url = page.url()
    form = _form(page, url)
    form.pop("new_invoice|aino.work@example.fi")
    form.pop("sms|C2")
    answer = page.client.post(url, data=form)
    assert answer.status_code == 200
    status = answer.text.split('id="saved"', 1)[1].split("</div>", 1)[0]
    assert "aino.work@example.fi: Uudet laskut: päällä → pois" in status
    assert "Tekstiviestit asiakkuudesta Mökki: päällä → pois" in status
    assert 'name="sms|C2" value="on">' in answer.text  # shown unticked now
    assert page.toggles("aino.work@example.fi")["new_invoice"] is False
    assert page.toggles("aino@example.fi")["new_invoice"] is True
    assert page.account_sms("C2") is False
    assert page.account_sms("C1") is None  # untouched: still the contact's default
    trail = page.trail()
    assert [(r["toggle"], r["old"], r["new"], r["source"]) for r in trail] == [
        ("aino.work@example.fi new_invoice", True, False, "preference_page"),
        ("customer C2 sms", True, False, "preference_page"),
    ]
    assert all(r["actor"].startswith("link:k1:") for r in trail)
    again = page.client.post(url, data=form)  # the same form again: nothing moves, nothing recorded
    assert "Mikään ei muuttunut" in again.text
    assert len(page.trail()) == 2


def test_a_crafted_form_cannot_switch_a_required_category_off(page: Page) -> None:
    url = page.url()
    form = _form(page, url)
    form.pop("pending_reminders|aino@example.fi", None)
    page.client.post(url, data=form)
    assert page.toggles("aino@example.fi")["pending_reminders"] is True
    assert page.trail() == []


def test_a_post_without_the_token_changes_nothing(page: Page) -> None:
    url = page.url()
    for broken in ({"form": "preferences"}, {"token": "other", "form": "preferences"}, {"token": "x"}):
        answer = page.client.post(url, data=broken)
        assert answer.status_code == 400
        assert "aino" not in answer.text.lower()
    assert page.trail() == []


def _forged(page: Page) -> str:
    kid, payload, sig = page.signer.sign("acme", "P1", "aino@example.fi").split(".")
    return f"{kid}.{payload[:-2]}xx.{sig}"


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda p: f"/preferences/acme/{_forged(p)}", 403),
        (lambda p: f"/preferences/acme/{LinkSigner('k1', b'wrong').sign('acme', 'P1', 'a@x.fi')}", 403),
        (lambda p: f"/preferences/acme/{LinkSigner('k9', b'x').sign('acme', 'P1', 'a@x.fi')}", 403),
        (
            lambda p: (
                f"/preferences/acme/{p.signer.sign('acme', 'P1', 'a@x.fi', now=time.time() - 91 * 86400)}"
            ),
            410,
        ),
        (
            lambda p: p.url(org="other", contact="P1", address="other@example.fi").replace(
                "/other/", "/acme/"
            ),
            403,
        ),
        (lambda p: "/preferences/acme/not-a-token", 400),
        (lambda p: "/preferences/acme/" + "a.b." + "c" * 3000, 400),
        (lambda p: "/preferences/acme/P1", 400),
        (lambda p: "/preferences/acme/%E2%82%AC.%FF.x", 400),
    ],
)
def test_a_bad_link_gets_a_clear_page_and_no_data(page: Page, make: Any, status: int) -> None:
    url = make(page)
    for method, path in (("GET", url), ("POST", url), ("POST", url + "/unsubscribe?kind=invoice")):
        answer = page.client.request(method, path, data={"token": "x", "form": "preferences"})
        assert answer.status_code == status, (method, path)
        assert "text/html" in answer.headers["content-type"]
        for secret in ("Aino", "aino", "Acme Oy", "Mökki", "Other Person", "other@example.fi"):
            assert secret not in answer.text
    assert page.trail() == []
    assert page.trail(org="other") == []


def test_a_link_for_a_contact_that_is_gone_shows_nothing(page: Page) -> None:
    answer = page.client.get(page.url(contact="P404"))
    assert answer.status_code == 403
    assert "aino" not in answer.text.lower()


def test_one_click_switches_off_the_emails_kind_only_and_never_a_required_one(page: Page) -> None:
    url = page.url(address="aino@example.fi")
    body = {"content": b"List-Unsubscribe=One-Click"}
    ok = page.client.post(url + "/unsubscribe?kind=payment_thank_you", **body)
    assert ok.status_code == 200
    assert page.toggles("aino@example.fi")["payment_confirmation"] is False
    assert page.toggles("aino@example.fi")["new_invoice"] is True
    assert page.toggles("aino.work@example.fi")["payment_confirmation"] is True  # the other address
    required = page.client.post(url + "/unsubscribe?kind=payment_reminder", **body)
    assert required.status_code == 200
    assert page.toggles("aino@example.fi")["pending_reminders"] is True
    assert page.client.get(url + "/unsubscribe?kind=invoice").status_code == 200  # a GET only shows
    assert page.toggles("aino@example.fi")["new_invoice"] is True
    (row,) = page.trail()
    assert (row["toggle"], row["source"]) == ("aino@example.fi payment_confirmation", "one_click")


def test_one_click_may_switch_off_all_optional_mail_when_the_organisation_says_so(page: Page) -> None:
    with page.store.transaction() as conn:
        update_preference_settings(conn, "acme", {"unsubscribe_scope": "all"})
    page.client.post(page.url() + "/unsubscribe?kind=invoice", content=b"List-Unsubscribe=One-Click")
    toggles = page.toggles("aino@example.fi")
    assert (toggles["new_invoice"], toggles["payment_confirmation"], toggles["refunds"]) == (
        False,
        False,
        False,
    )
    assert toggles["pending_reminders"] is True


def test_the_consent_trail_is_served_to_the_organisation_only_masked_unless_revealed(page: Page) -> None:
    url = page.url()
    form = _form(page, url)
    form.pop("refunds|aino@example.fi")
    page.client.post(url, data=form)
    with page.store.transaction() as conn:
        view = create_key(conn, "acme", Level.VIEW)[1]
        admin = create_key(conn, "acme", Level.ADMIN)[1]
        other = create_key(conn, "other", Level.ADMIN)[1]
    masked = page.client.get("/contacts/P1/consent", headers={"Authorization": f"Bearer {view}"})
    assert masked.status_code == 200
    (row,) = masked.json()["consent"]
    assert row["toggle"].endswith(" refunds")
    assert "aino@example.fi" not in row["toggle"]
    revealed = page.client.get(
        "/contacts/P1/consent?reveal=true", headers={"Authorization": f"Bearer {admin}"}
    )
    assert revealed.json()["consent"][0]["toggle"] == "aino@example.fi refunds"
    # The other organisation's P1 is another contact: its trail is its own (empty).
    theirs = page.client.get("/contacts/P1/consent", headers={"Authorization": f"Bearer {other}"})
    assert theirs.json()["consent"] == []
    missing = page.client.get("/contacts/NOPE/consent", headers={"Authorization": f"Bearer {view}"})
    assert missing.status_code == 404
    assert page.client.get("/contacts/P1/consent").status_code == 401


def _inbound(page: Page, form: dict[str, str], *, signed: bool = True) -> Any:
    headers = {}
    if signed:
        url = f"{PUBLIC}/webhooks/twilio/inbound"
        headers["X-Twilio-Signature"] = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    return page.client.post("/webhooks/twilio/inbound", data=form, headers=headers)


def _opted_out(page: Page, org: str = "acme") -> bool:
    with page.store.reading() as conn:
        return bool(
            conn.execute(
                select(contacts.c.sms_opted_out).where(
                    contacts.c.org_id == org, contacts.c.contact_id == "P1"
                )
            ).scalar()
        )


def test_inbound_stop_then_start_through_the_signed_webhook(page: Page) -> None:
    base = {"From": "+358401234567", "To": "+15005550006", "MessageSid": "SM" + "1" * 32}
    assert _inbound(page, {**base, "Body": " stop "}, signed=False).status_code == 403
    bad = _inbound(page, {**base, "Body": "STOP"}, signed=False)
    assert bad.status_code == 403
    assert not _opted_out(page)
    answer = _inbound(page, {**base, "Body": " Stop "})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert _opted_out(page)
    assert _opted_out(page, "other")  # the same number texts for both from the default sender
    assert _inbound(page, {**base, "Body": "yes"}).status_code == 200
    assert not _opted_out(page)
    trail = page.trail()
    assert [(r["toggle"], r["new"], r["source"]) for r in trail] == [
        ("sms_opted_out", True, "sms_keyword"),
        ("sms_opted_out", False, "sms_keyword"),
    ]
    assert trail[0]["actor"] == "twilio:SM" + "1" * 32


def test_inbound_help_answers_with_the_organisations_text_and_chatter_changes_nothing(page: Page) -> None:
    with page.store.transaction() as conn:
        update_preference_settings(conn, "acme", {"sms_help_text": "Acme Oy: call 09 123 456"})
    base = {"From": "+358401234567", "To": "+15005550006"}
    help_answer = _inbound(page, {**base, "Body": "help"})
    assert "<Message>Acme Oy: call 09 123 456</Message>" in help_answer.text
    chatter = _inbound(page, {**base, "Body": "please stop sending"})
    assert "<Message>" not in chatter.text
    typed = _inbound(page, {**base, "Body": "ARRÊT", "OptOutType": "STOP"})
    assert typed.status_code == 200
    assert _opted_out(page)
    other_number = _inbound(page, {**base, "To": "+15005550099", "Body": "START"})
    assert other_number.status_code == 200
    assert _opted_out(page)  # a START to a number acme does not text from changes nothing of acme's


@pytest.mark.parametrize(
    "form",
    [
        {"From": "not a number", "To": "+15005550006", "Body": "STOP"},
        {"From": "+358401234567\x00", "To": "+15005550006", "Body": "STOP"},
        {"From": "+358401234567", "To": "+15005550006", "Body": "STOP" * 10000},
    ],
)
def test_hostile_inbound_messages_are_answered_without_a_5xx(page: Page, form: dict[str, str]) -> None:
    answer = _inbound(page, form)
    assert answer.status_code < 500
    assert not _opted_out(page)


def test_a_binary_or_mistyped_inbound_body_is_refused_without_a_5xx(page: Page) -> None:
    for body, kind in (
        (b"\xff\xfe\x00\x01", "application/x-www-form-urlencoded"),
        (b'{"Body": "STOP"}', "application/json"),
        (b"Body=%FF%FE&From=%2B358401234567", "application/x-www-form-urlencoded"),
    ):
        answer = page.client.post(
            "/webhooks/twilio/inbound",
            content=body,
            headers={"Content-Type": kind, "X-Twilio-Signature": "x"},
        )
        assert 400 <= answer.status_code < 500
    assert not _opted_out(page)


def test_a_hostile_form_never_costs_a_5xx_or_changes_anything(page: Page) -> None:
    url = page.url()
    token = url.rsplit("/", 1)[1]
    multipart = b'--b\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nx\r\n--b--\r\n'
    for body, kind in (
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
        (f"token={token}x&form=preferences&x=".encode() + b"a" * 3000, "application/x-www-form-urlencoded"),
        (b'{"token": "x"}', "application/json"),
        (multipart, "multipart/form-data; boundary=b"),
    ):
        answer = page.client.post(url, content=body, headers={"Content-Type": kind})
        assert answer.status_code < 500
    assert page.trail() == []


def test_an_account_the_organisation_switched_off_is_shown_but_not_offered(page: Page) -> None:
    with page.store.transaction() as conn:
        conn.execute(contacts.update().where(contacts.c.contact_id == "P1").values(sms_enabled=False))
    url = page.url()
    html = page.client.get(url).text
    assert 'name="sms|C1"' not in html
    assert "Acme Oy ei lähetä tekstiviestejä tästä asiakkuudesta." in html
    page.client.post(url, data={**_form(page, url), "sms|C1": "on"})  # a crafted "yes"
    assert page.account_sms("C1") is None
    assert page.trail() == []
