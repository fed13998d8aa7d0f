"""Every source of a toggle change writes its consent row: the operator (one contact), a bulk
change, the directory import; and the CLI shows the trail and lifts suppressions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.store.consent import cause_of, consent_trail
from infra.store.suppression import list_suppressions, suppress_address
from producers.cli import app
from producers.operations.directory import change_toggles, import_customer
from schemas.directory import CustomerRecord
from schemas.toggles import Action, ToggleRequest, toggles_behind
from tests.factories import customer
from tests.integration.conftest import import_customers


def _record(**contact: Any) -> dict[str, Any]:
    person = {
        "contact_id": "P1",
        "primary": True,
        "name": "Aino",
        "mobile": "+358401234567",
        "emails": [{"address": "aino@example.fi"}],
        **contact,
    }
    return customer(contacts=[person])


def _trail(store: Services, contact: str = "P1") -> list[tuple[str, Any, Any, str, str]]:
    with store.reading() as conn:
        return [
            (r["toggle"], r["old"], r["new"], r["source"], r["actor"])
            for r in consent_trail(conn, "acme", contact)
        ]


def test_operator_bulk_and_import_changes_each_write_their_rows(store: Services) -> None:
    import_customers(store, _record())
    assert _trail(store) == []  # a contact's first values are the record itself, not a change

    change_toggles(store, "acme", ToggleRequest(sms=Action.DISABLE), ids=["P1"], actor="api:key_1")
    change_toggles(
        store, "acme", ToggleRequest(categories={"refunds": Action.DISABLE}), customer_id="C1", actor="cli"
    )
    change_toggles(store, "acme", ToggleRequest(notify=Action.DISABLE), ids=["P1"], dry_run=True)
    changed = _record(emails=[{"address": "aino@example.fi", "notify": False}])
    assert (
        import_customer(store, CustomerRecord.model_validate(changed), actor="api:key_2").outcome == "updated"
    )
    assert _trail(store) == [
        ("sms", True, False, "operator", "api:key_1"),
        ("aino@example.fi refunds", True, False, "bulk", "cli"),
        ("aino@example.fi notify", True, False, "import", "api:key_2"),
        ("aino@example.fi refunds", False, True, "import", "api:key_2"),  # the record says refunds on
    ]


def test_the_cli_shows_the_trail_masked_and_lifts_a_suppression(store: Services) -> None:
    import_customers(store, _record())
    with store.transaction() as conn:
        suppress_address(conn, "acme", "aino@example.fi", "550 5.1.1 no such user", actor="smtp:ntf_1")
    runner = CliRunner()
    shown = runner.invoke(
        app, ["contacts", "consent", "--contact", "P1", "--org", "acme", "--json"], obj=store.settings
    )
    assert shown.exit_code == 0, shown.output
    (row,) = json.loads(shown.output)["consent"]
    assert row["toggle"] == "a***@example.fi suppressed"
    assert (row["source"], row["actor"], row["new"]) == ("bounce", "smtp:ntf_1", True)
    listed = runner.invoke(app, ["contacts", "suppressions", "--org", "acme"], obj=store.settings)
    assert "aino@example.fi (P1)" in listed.output
    assert "550 5.1.1" in listed.output
    other = runner.invoke(
        app, ["contacts", "suppressions", "--org", "other", "--lift", "aino@example.fi"], obj=store.settings
    )
    assert other.exit_code == 1  # another organisation cannot lift acme's
    lifted = runner.invoke(
        app, ["contacts", "suppressions", "--org", "acme", "--lift", "aino@example.fi"], obj=store.settings
    )
    assert lifted.exit_code == 0, lifted.output
    with store.reading() as conn:
        assert list_suppressions(conn, "acme") == []
    assert [t[:4] for t in _trail(store)] == [
        ("aino@example.fi suppressed", False, True, "bounce"),
        ("aino@example.fi suppressed", True, False, "operator"),
    ]
    missing = runner.invoke(
        app, ["contacts", "consent", "--contact", "NOPE", "--org", "acme"], obj=store.settings
    )
    assert missing.exit_code == 1


def test_an_operator_sets_the_preference_page_and_bad_values_are_refused(store: Services) -> None:
    runner = CliRunner()
    args = ["orgs", "preferences", "acme", "--colour", "#AA3300", "--require", "pending_reminders"]
    made = runner.invoke(
        app, [*args, "--unsubscribe-scope", "all", "--sms-help", "Call 09 123"], obj=store.settings
    )
    assert made.exit_code == 0, made.output
    shown = json.loads(made.output)
    assert shown["brand_colour"] == "#AA3300"
    assert shown["required_categories"] == ["pending_reminders"]
    assert (shown["unsubscribe_scope"], shown["sms_help_text"]) == ("all", "Call 09 123")
    for bad in (["--colour", "red;}body{x"], ["--require", "everything"], ["--unsubscribe-scope", "some"]):
        refused = runner.invoke(app, ["orgs", "preferences", "acme", *bad], obj=store.settings)
        assert refused.exit_code != 0
    cleared = runner.invoke(app, ["orgs", "preferences", "acme", "--no-required"], obj=store.settings)
    assert json.loads(cleared.output)["required_categories"] == []


def test_a_suppression_outlives_an_import_that_rewrites_the_addresses(store: Services) -> None:
    import_customers(store, _record())
    with store.transaction() as conn:
        suppress_address(conn, "acme", "aino@example.fi", "550 no such user", actor="smtp:ntf_1")
    rewritten = _record(
        emails=[{"address": "aino@example.fi", "notify": False}, {"address": "new@example.fi"}]
    )
    import_customer(store, CustomerRecord.model_validate(rewritten))
    with store.reading() as conn:
        (row,) = list_suppressions(conn, "acme")
    assert (row["address"], row["reason"]) == ("aino@example.fi", "550 no such user")


def test_an_import_switching_the_accounts_sms_off_is_in_each_contacts_trail_and_behind_the_skip(
    store: Services,
) -> None:
    second = {"contact_id": "P2", "name": "Eero", "mobile": "+358401234568"}
    record = _record()
    record["contacts"].append(second)
    import_customers(store, record)
    off = {**record, "sms_enabled": False}
    import_customer(store, CustomerRecord.model_validate(off), actor="api:key_3")
    import_customer(store, CustomerRecord.model_validate(off), actor="api:key_3")  # nothing moves again
    for contact in ("P1", "P2"):
        assert _trail(store, contact) == [("customer C1 account sms", True, False, "import", "api:key_3")]

    with store.reading() as conn:
        [row] = consent_trail(conn, "acme", "P1")
        # What history asks for a notification skipped ``customer_sms_off`` after the import.
        behind = toggles_behind("customer_sms_off", "invoice", "+358401234567", "C1")
        cause = cause_of(conn, "acme", "P1", behind, datetime.now(UTC))
    assert cause is not None
    assert cause["id"] == row["id"]
