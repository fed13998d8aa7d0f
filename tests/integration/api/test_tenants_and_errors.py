"""Tenant isolation (another organisation's ids are 404, never 403), the body limit (413), the
one error shape for bad requests (422), and keys stored only as hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, Text, inspect, select
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.store.tables import api_keys, gc_payments, metadata
from infra.store.toggles import load_toggles
from producers.cli import app as cli
from tests.integration.api.conftest import MAX_BODY, Api


def _other_payment(store: Services) -> None:
    with store.transaction() as conn:
        conn.execute(
            gc_payments.insert().values(
                gc_id="PM_OTHER",
                org_id="other",
                invoice_id="INV-9",
                customer_id="C9",
                amount_minor=100,
                currency="EUR",
                status="pending_submission",
                synced_at=datetime.now(UTC),
            )
        )


def _asks(contact: str, invoice: str, payment: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/contacts/{contact}", None),
        ("GET", f"/contacts/{contact}/activity", None),
        ("GET", f"/invoices/{invoice}/history", None),
        ("PUT", f"/contacts/{contact}/toggles", {"sms": "disable"}),
        ("POST", "/notify/preview", {"invoice_id": invoice}),
        ("POST", "/notify/send", {"invoice_id": invoice, "preview": "x"}),
        ("POST", f"/payments/{payment}/cancel", None),
    ]


def test_another_organisations_ids_answer_404_at_every_level_that_may_ask(api: Api, store: Services) -> None:
    _other_payment(store)
    admin = api.keys["admin"]  # the strongest key of acme still sees nothing of other's
    theirs = _asks("Q9", "INV-9", "PM_OTHER")
    nowhere = _asks("Q0", "INV-0", "PM_NONE")
    for (method, path, body), (_, missing_path, missing_body) in zip(theirs, nowhere, strict=True):
        answer = api.call(method, path, admin, json=body)
        assert answer.status_code == 404, (path, answer.text)
        # The same answer as for an id that exists nowhere: nothing tells them apart.
        missing = api.call(method, missing_path, admin, json=missing_body)
        assert missing.status_code == 404
        missing_text = missing.text
        for a, b in (("Q0", "Q9"), ("INV-0", "INV-9"), ("PM_NONE", "PM_OTHER")):
            missing_text = missing_text.replace(a, b)
        assert answer.text == missing_text
    bulk = api.call("POST", "/toggles/bulk", admin, json={"contacts": ["Q9", "P1"], "sms": "disable"}).json()
    assert bulk["contacts"][0] == {"contact_id": "Q9", "result": "failed", "reason": "unknown contact"}
    with store.reading() as conn:
        assert load_toggles(conn, "other", "Q9").sms_enabled is None  # untouched
    # other's own key sees its own invoice.
    assert api.call("GET", "/invoices/INV-9/history", api.other_admin).status_code == 200


def test_put_customer_writes_the_keys_organisation_only(api: Api, store: Services) -> None:
    clash = api.call("PUT", "/customers/C9", api.keys["edit"], json={"org_id": "other", "name": "x"})
    assert clash.status_code == 422
    assert clash.json()["error"]["message"] == "org_id: 'other' does not match 'acme'"
    created = api.call("PUT", "/customers/C9", api.keys["edit"], json={"name": "Acme's own C9"})
    assert created.json() == {"customer_id": "C9", "result": "created", "warnings": []}
    other = api.call("GET", "/contacts/Q9", api.other_admin)
    assert other.status_code == 200  # other's C9 and Q9 are as they were


def test_a_body_over_the_limit_is_413_before_it_is_parsed(api: Api) -> None:
    big = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    answer = api.call("PUT", "/customers/C1", api.keys["edit"], content=big)
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large"
    assert (
        error["message"]
        == f"request body is {len(big)} bytes; the limit is {MAX_BODY} bytes (HERALD_API_MAX_BODY_BYTES)"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 1024

    streamed = api.call("POST", "/events", api.keys["send"], content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
    # No key at all: the limit still answers first, before anything is read.
    assert api.call("POST", "/events", None, content=big).status_code == 413


def _error(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 422, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


def test_malformed_json_and_wrong_shapes_are_422_naming_the_field(api: Api) -> None:
    edit = api.keys["edit"]
    broken = _error(
        api.call(
            "PUT",
            "/contacts/P1/toggles",
            edit,
            content=b'{"sms": ',
            headers={"Content-Type": "application/json"},
        )
    )
    assert broken["code"] == "invalid_request"
    assert broken["details"][0]["field"] == "body"
    assert broken["details"][0]["message"].startswith("malformed JSON")

    wrong = _error(api.call("PUT", "/contacts/P1/toggles", edit, json={"sms": "maybe", "colour": 1}))
    fields = {d["field"]: d["message"] for d in wrong["details"]}
    assert fields["body.sms"] == "Input should be 'keep', 'enable' or 'disable'"
    assert fields["body.colour"] == "Extra inputs are not permitted"
    assert wrong["message"].startswith("invalid request: body.sms: Input should be")

    contact = {"contact_id": "P1", "mobile": "9" * 50}
    nested = _error(api.call("PUT", "/customers/C1", edit, json={"contacts": [contact]}))
    assert nested["details"][0]["field"] == "body.contacts[0].mobile"

    array = _error(api.call("PUT", "/customers/C1", edit, json=[1, 2]))
    assert array["details"][0]["field"] == "body"

    events = _error(
        api.call(
            "POST",
            "/events",
            api.keys["send"],
            json=[{"type": "invoice.created", "org_id": "acme"}, {"org_id": "other"}],
        )
    )
    assert events["code"] == "invalid_events"
    assert events["details"][0]["index"] == 0
    assert "event_id: Field required" in events["details"][0]["reason"]
    assert events["details"][1] == {
        "index": 1,
        "reason": "org_id: 'other' is not this API key's organisation ('acme')",
    }

    template = _error(api.call("PUT", "/templates/invoice/sms/fi/body", edit, json={"source": "{{ nope }}"}))
    assert template["code"] == "invalid"
    assert "nope" in template["details"][0]

    assert api.call("GET", "/nowhere", edit).json()["error"]["code"] == "not_found"


def test_keys_are_made_on_the_cli_and_stored_only_as_hashes(store: Services) -> None:
    made = CliRunner().invoke(
        cli, ["keys", "create", "--org", "acme", "--level", "send", "--name", "billing"], obj=store.settings
    )
    assert made.exit_code == 0, made.output
    plaintext = made.stdout.strip().splitlines()[-1]
    assert plaintext.startswith("hk_")
    assert len(plaintext) > 40
    with store.reading() as conn:
        row = conn.execute(select(api_keys)).mappings().one()
        assert row["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
        for table in metadata.sorted_tables:  # the plaintext is nowhere in the database
            names = [c.name for c in table.columns if isinstance(c.type, String | Text)]
            for values in conn.execute(select(*(table.c[n] for n in names))).all() if names else []:
                assert all(plaintext not in str(v) for v in values), table.name
        assert set(inspect(conn).get_table_names()) >= {"api_keys"}
    listed = CliRunner().invoke(cli, ["keys", "list", "--org", "acme", "--json"], obj=store.settings)
    assert plaintext not in listed.stdout
    assert row["key_hash"] not in listed.stdout
    assert '"level": "send"' in listed.stdout
    revoked = CliRunner().invoke(cli, ["keys", "revoke", row["key_id"], "--org", "acme"], obj=store.settings)
    assert revoked.exit_code == 0
    again = CliRunner().invoke(cli, ["keys", "revoke", row["key_id"]], obj=store.settings)
    assert again.exit_code == 1
