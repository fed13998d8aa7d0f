"""Templates and manual notify over HTTP against hostile input (issue 13): bounded templates, save
refusing what render would, a preview that cannot render is a 422 naming template and line, and
another organisation's ids answer as ids that exist nowhere."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from infra.bootstrap import Services
from infra.store.notifications import record_event
from infra.store.tables import events, notifications
from infra.store.templates import load_overrides, save_override
from producers.api.app import create_app
from schemas.events import event_adapter
from schemas.validation import event_to_json
from tests.factories import payment_received
from tests.integration.api.conftest import Api

PUT = "/templates/invoice/sms/fi/body"


def _error(answer: Any, status: int = 422) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:1000]
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def test_a_template_over_the_source_limit_is_refused_naming_the_limit(api: Api, store: Services) -> None:
    source = "Lasku {{ invoice.number }}\n" + "x" * 20_000
    roomy = TestClient(create_app(store.settings))  # the fixture's body limit is under the source limit
    headers = {"Authorization": f"Bearer {api.keys['edit']}"}
    error = _error(roomy.put(PUT, headers=headers, json={"source": source}))
    assert error["code"] == "invalid"
    assert error["details"] == [
        "invoice.sms.fi line 2: the template is 20027 characters, over the limit of 20000"
    ]
    with store.reading() as conn:
        assert load_overrides(conn, "acme") == {}


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("Lasku\n{{ 'y' * 100000001 }}", "100000001"),
        ("Lasku\n{{ ''.__class__ }}", "'__class__'"),
        ("Lasku\n{% set c = contact %}{{ c.phone }}", "'contact' can only be used as contact.name"),
        ("Lasku\n{% for c in [contact] %}{{ c.phone }}{% endfor %}", "contact"),
        ("Lasku\n{{ contact|attr('phone') }}", "'attr'"),
        ("Lasku\n{{ contact['phone'] }}", "contact.phone"),
        ('Lasku\n<a href="javascript:alert(1)">x</a>', "not an http(s) URL"),
    ],
)
def test_save_refuses_what_render_would_refuse_naming_the_line(
    api: Api, store: Services, source: str, says: str
) -> None:
    put = "/templates/invoice/email/fi/html" if "href" in source else PUT
    name = "invoice.email.fi.html" if "href" in source else "invoice.sms.fi"
    error = _error(api.call("PUT", put, api.keys["edit"], json={"source": source}))
    problem = error["details"][0]
    assert problem.startswith(f"{name} line 2: "), problem
    assert says in problem, problem
    with store.reading() as conn:
        assert load_overrides(conn, "acme") == {}


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("Lasku\n{{ amount + 1 }}", "invoice.sms.fi line 2: "),
        ("Lasku\n\n{{ 'y' * 100000001 }}", "invoice.sms.fi line 3: "),
        ("{{ invoice.nubmer }}", "invoice.sms.fi line 1: unknown variable 'invoice.nubmer'"),
    ],
)
def test_a_preview_of_a_template_that_fails_to_render_is_422_naming_the_template_and_the_line(
    api: Api, store: Services, source: str, says: str
) -> None:
    with store.transaction() as conn:  # as if saved before the save-time check knew better
        save_override(conn, "acme", ("invoice", "sms", "fi", "body"), source)
    answer = api.call("POST", "/notify/preview", api.keys["view"], json={"invoice_id": "INV-1"})
    error = _error(answer)
    assert error["code"] == "invalid"
    assert says in error["message"], error
    assert any(says in d for d in error["details"]), error
    assert len(answer.content) < 5000


def _notifications_of(store: Services, org: str) -> int:
    with store.reading() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(notifications).where(notifications.c.org_id == org)
            ).scalar_one()
        )


def test_another_organisations_templates_invoices_events_and_payments_are_ids_that_exist_nowhere(
    api: Api, store: Services
) -> None:
    payment = event_adapter.validate_python({**payment_received("evt_pay9"), "org_id": "other"})
    with store.transaction() as conn:
        record_event(conn, payment, event_to_json(payment), "routed")
        save_override(conn, "other", ("invoice", "sms", "fi", "body"), "OTHER {{ invoice.number }}")
    admin = api.keys["admin"]

    # Templates: theirs are not seen, and ours do not touch theirs.
    shown = api.call("GET", "/templates/invoice/sms/fi", admin).json()["parts"]["body"]
    assert "OTHER" not in shown
    listed = api.call("GET", "/templates", admin).json()["templates"]
    assert {t["source"] for t in listed} == {"shipped"}
    assert api.call("PUT", PUT, admin, json={"source": "Acme {{ invoice.number }}"}).status_code == 200
    assert api.call("POST", "/templates/invoice/sms/disable", admin).status_code == 200
    with store.reading() as conn:
        assert load_overrides(conn, "other") == {
            ("invoice", "sms", "fi", "body"): "OTHER {{ invoice.number }}"
        }
    theirs_listed = api.call("GET", "/templates", api.other_admin).json()["templates"]
    assert all(t["enabled"] for t in theirs_listed if (t["kind"], t["channel"]) == ("invoice", "sms"))

    # Notify: their invoice, their event on our invoice, their payment's invoice: as if nowhere.
    asks = [
        ({"invoice_id": "INV-9"}, {"invoice_id": "INV-0"}),
        ({"invoice_id": "INV-1", "event_id": "evt_INV-9"}, {"invoice_id": "INV-1", "event_id": "evt_INV-0"}),
        ({"invoice_id": "INV-9", "event_id": "evt_INV-9"}, {"invoice_id": "INV-0", "event_id": "evt_INV-0"}),
        ({"invoice_id": "INV-1", "event_id": "evt_pay9"}, {"invoice_id": "INV-1", "event_id": "evt_pay0"}),
        ({"invoice_id": "INV-1", "kind": "payment_thank_you", "event_id": "evt_pay9"}, None),
    ]
    for theirs, nowhere in asks:
        for path, extra in (("/notify/preview", {}), ("/notify/send", {"preview": "000000000000"})):
            answer = api.call("POST", path, admin, json={**theirs, **extra})
            assert answer.status_code == 404, (path, theirs, answer.text)
            if nowhere is not None:
                missing = api.call("POST", path, admin, json={**nowhere, **extra}).text
                for a, b in (("INV-0", "INV-9"), ("evt_INV-0", "evt_INV-9"), ("evt_pay0", "evt_pay9")):
                    missing = missing.replace(a, b)
                assert answer.text == missing
    assert _notifications_of(store, "other") == 0
    with store.reading() as conn:
        manual = conn.execute(select(func.count()).select_from(events).where(events.c.outcome == "manual"))
        assert manual.scalar_one() == 0


@pytest.mark.parametrize("locale", ["fi-FI-x-longer", "f", "FI1", "<script>"])
def test_a_locale_that_is_not_a_language_code_is_422_naming_it_not_a_500(api: Api, locale: str) -> None:
    answer = api.call("PUT", f"/templates/invoice/sms/{locale}/body", api.keys["edit"], json={"source": "x"})
    error = _error(answer)
    assert error["code"] == "invalid"
    assert f"locale {locale!r}" in error["message"]


@pytest.mark.parametrize("path", ["/notify/preview", "/notify/send"])
@pytest.mark.parametrize(
    "body", [{"invoice_id": "C9\x00"}, {"invoice_id": "INV-1", "event_id": "evt\x00"}, {"invoice_id": "a b"}]
)
def test_an_id_no_event_can_have_in_a_notify_body_is_422_naming_the_field(
    api: Api, store: Services, path: str, body: dict[str, Any]
) -> None:
    """Found by the fuzzing layer: a NUL in invoice_id was a 500 on PostgreSQL (the database
    refuses NUL in text). The contract's id shape is checked first, naming the field."""
    error = _error(api.call("POST", path, api.keys["send"], json=body))
    field = "invoice_id" if body["invoice_id"] != "INV-1" else "event_id"
    assert any(field in str(d.get("field", "")) for d in error["details"]), error
    with store.reading() as conn:
        assert conn.execute(select(func.count()).select_from(notifications)).scalar() == 0
