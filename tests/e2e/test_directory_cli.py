"""The directory commands as an operator runs them: import (JSON Lines, CSV), toggles, show, orgs."""

from __future__ import annotations

import json

from tests.e2e.conftest import Deployment

HEADER = ",".join(
    [
        "org_id",
        "customer_id",
        "customer_name",
        "contact_id",
        "primary",
        "name",
        "mobile",
        "sms_enabled",
        "locale",
        "email",
        "email_notify",
        "new_invoice",
    ]
)
CSV = f"""{HEADER}
acme,C1,Acme Oy,P1,true,Aino,040 1234567,,fi,aino@example.fi,,
acme,C1,Acme Oy,P1,true,Aino,040 1234567,,fi,aino.work@example.fi,false,
acme,C1,Acme Oy,Q1,false,Pekka,12345,true,fi,pekka@example.fi,,false
acme,C2,,P2,true,Nobody,,,en,,,
acme,C3,Beta,P3,maybe,Typo,,,en,,,
acme,C4,Gamma,P4,true,Y,+358401111111,,en,y@x.fi,,
acme,C4,Gamma,P4,true,Y,+358402222222,,en,y2@x.fi,,
acme,C5,Delta,P5,true,Z,+358403333333,,en,z@x.fi,,
"""


def test_a_csv_import_reports_each_customer_and_the_good_rows_land(deployment: Deployment) -> None:
    path = deployment.workdir / "contacts.csv"
    path.write_text(CSV)
    result = deployment.herald("contacts", "import", str(path))
    assert result.returncode == 1
    assert "lines 2, 3, 4: acme/C1: created (warning: contact Q1: mobile '12345' is not a valid number" in (
        result.stdout
    )
    assert "line 5: failed: unknown customer acme/C2 (a new customer needs customer_name)" in result.stderr
    assert "line 6: failed: primary: 'maybe' is not true or false" in result.stderr
    assert "lines 7, 8: failed: line 8: contact P4 has other mobile than on an earlier line" in result.stderr
    assert "line 9: acme/C5: created" in result.stdout
    assert "2 created, 0 updated, 0 unchanged, 3 failed" in result.stdout

    shown = json.loads(
        deployment.herald("contacts", "show", "P1", "--org", "acme", "--json", "--reveal").stdout
    )
    assert shown["mobile"] == "+358401234567"
    assert [(e["address"], e["notify"]) for e in shown["emails"]] == [
        ("aino.work@example.fi", False),
        ("aino@example.fi", True),
    ]
    again = deployment.herald("contacts", "import", str(path))
    assert "0 created, 0 updated, 2 unchanged, 3 failed" in again.stdout


def test_a_csv_with_a_bad_header_is_refused_naming_the_columns(deployment: Deployment) -> None:
    path = deployment.workdir / "bad.csv"
    path.write_text("org_id,customer,contact_id\nacme,C1,P1\n")
    result = deployment.herald("contacts", "import", str(path))
    assert result.returncode == 1
    assert "bad CSV header: missing column(s) customer_id; unknown column(s) customer" in result.stderr
    assert "(nothing imported)" in result.stdout


def test_a_json_lines_import_refuses_a_duplicate_customer_and_a_bad_line_keeping_the_rest(
    deployment: Deployment,
) -> None:
    good = {"org_id": "acme", "customer_id": "C1", "contacts": [{"contact_id": "P1", "primary": True}]}
    bad = {"org_id": "acme", "customer_id": "C2", "contacts": [{"contact_id": "P2", "status": "gone"}]}
    path = deployment.workdir / "contacts.jsonl"
    lines = [good, "not json", bad, {**good, "customer_id": "C3"}, good]
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    result = deployment.herald("contacts", "import", str(path))
    assert result.returncode == 1
    assert "line 2: failed: not valid JSON" in result.stderr
    assert (
        "line 3: failed: contacts[0].status: Input should be 'active' or 'pending_activation'"
        in result.stderr
    )
    assert "line 5: failed: duplicate customer acme/C1 (first on line 1)" in result.stderr
    assert "2 created, 0 updated, 0 unchanged, 3 failed" in result.stdout


def test_bulk_toggles_report_per_contact_and_dry_run_writes_nothing(deployment: Deployment) -> None:
    path = deployment.workdir / "contacts.csv"
    path.write_text(CSV)
    deployment.herald("contacts", "import", str(path))

    dry = deployment.herald(
        "contacts", "toggles", "--org", "acme", "--customer", "C1", "--sms", "disable", "--dry-run"
    )
    assert dry.returncode == 0
    assert "(dry run) P1: changed: sms: on → off" in dry.stdout
    assert "(dry run) Q1: changed: sms: on → off" in dry.stdout
    shown = json.loads(deployment.herald("contacts", "show", "P1", "--org", "acme", "--json").stdout)
    assert shown["sms_enabled"] is None  # still the default: nothing was written

    real = deployment.herald(
        "contacts", "toggles", "--org", "acme", "--contacts", "P1,NOPE",
        "--notify", "enable", "--refunds", "disable", "--json",
    )  # fmt: skip
    assert real.returncode == 1  # one contact failed
    report = json.loads(real.stdout)["contacts"]
    assert report[0]["contact_id"] == "P1"
    assert report[0]["changes"] == [
        "aino.work@example.fi notify: off → on",
        "aino.work@example.fi refunds: on → off",
        "aino@example.fi refunds: on → off",
    ]
    assert report[1] == {"contact_id": "NOPE", "result": "failed", "reason": "unknown contact"}
    shown = json.loads(deployment.herald("contacts", "show", "P1", "--org", "acme", "--json").stdout)
    assert all(e["notify"] and not e["categories"]["refunds"] for e in shown["emails"])


def test_organisation_settings_are_set_shown_and_checked(deployment: Deployment) -> None:
    defaults = json.loads(deployment.herald("orgs", "show", "acme").stdout)
    assert (defaults["sms_connected"], defaults["disabled_templates"]) == (True, [])
    changed = deployment.herald(
        "orgs", "set", "acme", "--region", "se", "--sender-name", "Acme Oy", "--sender-name-active",
        "--disable", "invoice:email", "--buys-credit",
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    settings = json.loads(changed.stdout)
    assert (settings["default_region"], settings["sender_name"], settings["sender_name_active"]) == (
        "SE",
        "Acme Oy",
        True,
    )
    assert settings["disabled_templates"] == ["invoice:email"]
    refused = deployment.herald("orgs", "set", "acme", "--sender-name", "12345")
    assert refused.returncode != 0
    assert "1-11 letters, digits or spaces, with at least one letter" in refused.stderr
    bad_template = deployment.herald("orgs", "set", "acme", "--disable", "invoice:fax")
    assert "'invoice:fax': expected one of" in bad_template.stderr


def test_templates_are_listed_shown_checked_and_set_only_when_they_pass_the_check(
    deployment: Deployment,
) -> None:
    listed = deployment.herald("templates", "list")
    assert listed.returncode == 0
    assert listed.stdout.count("shipped") == 30  # five kinds, SMS and email, en/fi/ja
    shown = deployment.herald("templates", "show", "invoice", "email", "ja")
    assert "--- invoice.email.ja.subject" in shown.stdout
    checked = deployment.herald("templates", "check")
    assert "60 templates checked, 0 problem(s)" in checked.stdout  # 12 parts a kind

    bad = deployment.workdir / "bad.j2"
    bad.write_text("Hei {{ contact.name }}\n{{ invoice.totl }}\n")
    refused = deployment.herald("templates", "set", "invoice", "sms", "fi", str(bad), "--org", "acme")
    assert refused.returncode == 1
    assert "error: invoice.sms.fi line 2: unknown variable 'invoice.totl'" in refused.stderr

    good = deployment.workdir / "good.j2"
    good.write_text("Hei {{ contact.name }}, lasku {{ invoice.number }}: {{ amount }}")
    saved = deployment.herald("templates", "set", "invoice", "sms", "fi", str(good), "--org", "acme")
    assert saved.returncode == 0, saved.stderr
    assert (
        "Hei {{ contact.name }}, lasku"
        in deployment.herald("templates", "show", "invoice", "sms", "fi", "--org", "acme").stdout
    )
    disabled = deployment.herald("templates", "disable", "payment_reminder", "sms", "--org", "acme")
    assert disabled.returncode == 0
    assert (
        "payment_reminder:sms"
        in json.loads(deployment.herald("orgs", "show", "acme").stdout)["disabled_templates"]
    )


def test_credits_are_added_and_shown(deployment: Deployment) -> None:
    deployment.herald("orgs", "set", "acme", "--buys-credit", "--low-balance-threshold", "5")
    added = deployment.herald("credits", "add", "acme", "12")
    assert "acme: balance 12 segment(s)" in added.stdout
    shown = json.loads(deployment.herald("credits", "show", "acme", "--json").stdout)
    assert (shown["balance"], shown["buys_credit"], shown["low_balance_threshold"]) == (12, True, 5)


# --- hostile and careless files (issue 13) ------------------------------------------------------


def _jsonl(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def test_a_json_lines_import_refuses_each_bad_line_by_number_and_imports_the_rest(
    deployment: Deployment,
) -> None:
    deployment.env["HERALD_API_MAX_BODY_BYTES"] = "4096"  # one customer's line: small here
    aino = {"contact_id": "P1", "primary": True, "name": "Aino", "mobile": "040 1234567"}
    good = {"org_id": "acme", "customer_id": "C1", "name": "Acme Oy", "contacts": [aino]}
    path = deployment.workdir / "contacts.jsonl"
    path.write_bytes(
        _jsonl(
            json.dumps(good).encode(),
            b'{"org_id": "acme", "customer_id": "C2", "name": "Beta \xff"}',
            b"\x89PNG\r\x1a\x00\x00\x00\rIHDR\x00\x00\x01",
            b'{"org_id": "acme", "customer_id": "C3", "contacts": ' + b"[" * 300 + b"]" * 300 + b"}",
            b'{"org_id": "acme", "customer_id": "C4", "name": "' + b"x" * 5000 + b'"}',
            json.dumps({**good, "customer_id": "C5", "name": "Acme\u202e Oy"}).encode(),
            json.dumps({**good, "customer_id": "C6", "sms_enabled": "yes"}).encode(),
            json.dumps(
                {
                    **good,
                    "customer_id": "C7",
                    "contacts": [{"contact_id": "P7", "mobile": "+358 40 1234567 ext 9"}],
                }
            ).encode(),
            json.dumps({**good, "customer_id": "C9"}).encode(),
        )
    )
    result = deployment.herald("contacts", "import", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    for expected in (
        "line 2: failed: not valid UTF-8: byte 0xff at byte 55",
        "line 3: failed: not valid UTF-8: byte 0x89 at byte 1",
        "line 4: failed: contacts[0][0][0]…: nested deeper than 32 levels",
        "line 5: failed: line is 5051 bytes; the limit is 4096 bytes (HERALD_API_MAX_BODY_BYTES)",
        "line 6: failed: name: contains U+202E RIGHT-TO-LEFT OVERRIDE at character 5",
        "line 7: failed: sms_enabled: Input should be a valid boolean",
        "line 8: failed: contacts[0].mobile: '+358 40 1234567 ext 9' has an extension (9);"
        " SMS cannot dial an extension: give the mobile number alone",
    ):
        assert expected in result.stderr, expected
    assert "line 1: acme/C1: created" in result.stdout
    assert "line 9: acme/C9: created" in result.stdout
    assert "2 created, 0 updated, 0 unchanged, 7 failed" in result.stdout
    assert deployment.query("SELECT customer_id FROM customers ORDER BY customer_id") == [("C1",), ("C9",)]


def test_a_blank_name_on_import_keeps_the_stored_names(deployment: Deployment) -> None:
    line = {"org_id": "acme", "customer_id": "C1", "name": "Acme Oy",
            "contacts": [{"contact_id": "P1", "primary": True, "name": "Aino Virtanen"}]}  # fmt: skip
    path = deployment.workdir / "contacts.jsonl"
    path.write_text(json.dumps(line) + "\n")
    assert deployment.herald("contacts", "import", str(path)).returncode == 0
    blank = {**line, "name": "  ", "contacts": [{"contact_id": "P1", "primary": True, "name": ""}]}
    path.write_text(json.dumps(blank) + "\n")
    again = deployment.herald("contacts", "import", str(path))
    assert "line 1: acme/C1: unchanged" in again.stdout
    csv_path = deployment.workdir / "contacts.csv"
    csv_path.write_text("org_id,customer_id,customer_name,contact_id,primary,name\nacme,C1,,P1,true,\n")
    from_csv = deployment.herald("contacts", "import", str(csv_path))
    assert "line 2: acme/C1: unchanged" in from_csv.stdout
    assert deployment.query("SELECT name FROM customers") == [("Acme Oy",)]
    shown = json.loads(deployment.herald("contacts", "show", "P1", "--org", "acme", "--json").stdout)
    assert shown["name"] == "Aino Virtanen"


def test_a_csv_import_refuses_bad_bytes_and_words_by_line_and_column_and_imports_the_rest(
    deployment: Deployment,
) -> None:
    path = deployment.workdir / "contacts.csv"
    path.write_bytes(
        b"\xef\xbb\xbforg_id,customer_id,customer_name,customer_sms_enabled,contact_id,primary,name,email\n"
        b"acme,C1,Acme Oy,,P1,true,Aino,a@x.fi\n"
        b"acme,C1,Acme Oy,,P1,true,Aino,b@x.fi\n"
        b"acme,C2,Beta \xe4,,P2,true,B,\n"
        b"acme,C3,Gamma,on,P3,true,C,c@x.fi\n"
        b"acme,C3,Gamma,perhaps,P3,true,C,c2@x.fi\n"
        b"acme,C4,Delta,,P4,true,D\x00,\n"
        b"acme,C5,Eps,,P5,true,E,\n"
    )
    result = deployment.herald("contacts", "import", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "lines 2, 3: acme/C1: created" in result.stdout
    assert "line 4: failed: line 4: customer_name: not valid UTF-8 (byte 0xe4)" in result.stderr
    assert (
        "lines 5, 6: failed: customer_sms_enabled: 'perhaps' is not true or false on line 6"
        " (use true/false, yes/no, 1/0 or on/off)" in result.stderr
    )
    assert "line 7: failed: line 7: name: contains U+0000 NUL at character 2" in result.stderr
    assert "line 8: acme/C5: created" in result.stdout
    assert "2 created, 0 updated, 0 unchanged, 3 failed" in result.stdout
