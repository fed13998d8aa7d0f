"""The directory's routes and commands under hostile and careless input (issue 13), on a real
store (SQLite and PostgreSQL): ``PUT /customers``, the toggles (one and bulk), a contact and its
activity, and ``herald contacts`` run in-process.

Bad input is a 4xx in the one error shape naming the field; another organisation's ids, in
whatever shape, answer exactly as ids that exist nowhere, with no effect on that organisation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.directory import load_customer
from infra.store.tables import contact_emails, contacts, customer_contacts, customers
from producers.cli import app as cli
from tests.integration.api.conftest import Api

P1 = {"contact_id": "P1", "primary": True, "mobile": "+358401234567"}


def _org_rows(store: Services, org: str) -> dict[str, list[Any]]:
    """Every directory row of ``org``, to show a request changed nothing there."""
    with store.reading() as conn:
        return {
            table.name: sorted(
                tuple(str(v) for v in row)
                for row in conn.execute(select(table).where(table.c.org_id == org)).all()
            )
            for table in (customers, contacts, customer_contacts, contact_emails)
        }


def _error(answer: Any, status: int = 422) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


def _put(api: Api, customer_id: str, body: Any) -> Any:
    return api.call("PUT", f"/customers/{quote(customer_id, safe='')}", api.keys["edit"], json=body)


# --- PUT /customers: nesting, encoding, types -------------------------------------------------


@pytest.mark.parametrize("levels", [40, 300, 1500])
def test_a_deeply_nested_customer_is_422_naming_the_field(api: Api, levels: int) -> None:
    body = '{"name": "Acme", "contacts": [{"contact_id": "P1", "emails": ' + "[" * levels + "]" * levels
    answer = api.call(
        "PUT",
        "/customers/C1",
        api.keys["edit"],
        content=(body + "}]}").encode(),
        headers={"Content-Type": "application/json"},
    )
    error = _error(answer)
    assert error["code"] == "invalid_request"
    # Past json.loads' own limit (~1000) too: the path is still named.
    assert error["details"] == [
        {
            "field": "body.contacts[0].emails[0]…",
            "message": "nested deeper than 32 levels",
            "type": "too_deep",
        }
    ]
    assert (
        error["message"] == f"invalid request: {error['details'][0]['field']}: nested deeper than 32 levels"
    )


def test_a_body_that_is_not_utf8_or_not_text_is_422_naming_the_byte(api: Api) -> None:
    edit = api.keys["edit"]
    headers = {"Content-Type": "application/json"}
    raw = api.call("PUT", "/customers/C1", edit, content=b'{"name": "Acme \xff"}', headers=headers)
    assert _error(raw)["details"] == [
        {"field": "body", "message": "not valid UTF-8: byte 0xff at byte 16", "type": "not_utf8"}
    ]
    lone = api.call("PUT", "/customers/C1", edit, content=b'{"name": "\\ud800"}', headers=headers)
    assert _error(lone)["details"] == [
        {"field": "body.name", "message": "not valid Unicode: a lone surrogate U+D800", "type": "not_unicode"}
    ]
    for body in ([1, 2], "C1", None):
        assert _error(_put(api, "C1", body))["details"][0]["field"] == "body"
    broken = _error(api.call("PUT", "/customers/C1", edit, content=b'{"name": ', headers=headers))
    assert broken["details"][0]["message"].startswith("malformed JSON: Expecting value")
    assert broken["details"][0]["type"] == "json_invalid"


def test_the_key_is_checked_before_the_body_is_read(api: Api) -> None:
    deep = b"[" * 1500 + b"]" * 1500
    for key, status in ((None, 401), (api.keys["view"], 403)):
        answer = api.call(
            "PUT", "/customers/C1", key, content=deep, headers={"Content-Type": "application/json"}
        )
        assert _error(answer, status)["code"] in ("unauthorized", "forbidden")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"sms_enabled": "yes"}, "body.sms_enabled", "Input should be a valid boolean"),
        ({"sms_enabled": 1}, "body.sms_enabled", "Input should be a valid boolean"),
        (
            {"contacts": [{**P1, "primary": "true"}]},
            "body.contacts[0].primary",
            "Input should be a valid boolean",
        ),
        (
            {"contacts": [{**P1, "emails": [{"address": "a@x.fi", "notify": "true"}]}]},
            "body.contacts[0].emails[0].notify",
            "Input should be a valid boolean",
        ),
        ({"name": "Acme\x00"}, "body.name", "contains U+0000 NUL at character 5"),
        ({"name": "\u202eAcme"}, "body.name", "contains U+202E RIGHT-TO-LEFT OVERRIDE at character 1"),
        (
            {"contacts": [{**P1, "mobile": "+358\u200b401234567"}]},
            "body.contacts[0].mobile",
            "contains U+200B ZERO WIDTH SPACE at character 5",
        ),
        (
            {"contacts": [{**P1, "contact_id": "P1\n"}]},
            "body.contacts[0].contact_id",
            "contains U+000A LINE FEED at character 3",
        ),
        (
            {"contacts": [{**P1, "mobile": "+358 40 1234567 ext 9"}]},
            "body.contacts[0].mobile",
            "'+358 40 1234567 ext 9' has an extension (9); SMS cannot dial an extension:"
            " give the mobile number alone",
        ),
        ({"contacts": {"contact_id": "P1"}}, "body.contacts", "Input should be a valid list"),
    ],
)
def test_bad_fields_of_a_customer_are_422_naming_the_field_and_nothing_is_stored(
    api: Api, store: Services, body: dict[str, Any], field: str, message: str
) -> None:
    before = _org_rows(store, "acme")
    error = _error(_put(api, "C2", {"name": "Beta", **body}))
    assert error["code"] == "invalid_request"
    assert [(d["field"], d["message"]) for d in error["details"]] == [(field, message)]
    assert error["message"] == f"invalid customer: {field}: {message}"
    assert _org_rows(store, "acme") == before


@pytest.mark.parametrize(
    ("customer_id", "message"),
    [  # (C0 controls in a URL are refused before any route, app-wide: producers/api/url_check.py)
        ("C2\x85", "contains U+0085 CONTROL CHARACTER at character 3"),
        ("\u202eC2", "contains U+202E RIGHT-TO-LEFT OVERRIDE at character 1"),
        (" C2", r"String should match pattern '^[A-Za-z0-9_.:\-]+$'"),
    ],
)
def test_a_bad_customer_id_in_the_path_is_422_naming_the_path(
    api: Api, store: Services, customer_id: str, message: str
) -> None:
    before = _org_rows(store, "acme")
    error = _error(_put(api, customer_id, {"name": "Beta"}))
    assert error["details"][0]["field"] == "path.customer_id"
    assert error["details"][0]["message"] == message
    assert _org_rows(store, "acme") == before


def test_a_blank_or_missing_name_keeps_the_stored_names(api: Api, store: Services) -> None:
    named = {"name": "Acme Oy", "contacts": [{**P1, "name": "Aino Virtanen"}]}
    assert _put(api, "C1", named).json()["result"] == "updated"
    for blank in ("", "   ", None):
        again = {"name": blank, "contacts": [{**P1, "name": blank}]}
        assert _put(api, "C1", again).json()["result"] == "unchanged"
    assert _put(api, "C1", {"contacts": [P1]}).json()["result"] == "unchanged"
    with store.reading() as conn:
        stored = load_customer(conn, "acme", "C1")
    assert stored is not None
    assert (stored.name, stored.contacts[0].name) == ("Acme Oy", "Aino Virtanen")
    renamed = _put(api, "C1", {"name": "Acme Group", "contacts": [{**P1, "name": "Aino V."}]})
    assert renamed.json()["result"] == "updated"  # an explicit name still changes it
    with store.reading() as conn:
        stored = load_customer(conn, "acme", "C1")
    assert stored is not None
    assert (stored.name, stored.contacts[0].name) == ("Acme Group", "Aino V.")
    created = _put(api, "C7", {"contacts": [{"contact_id": "P7"}]})
    assert created.json()["result"] == "created"  # a new customer without a name: ""
    with store.reading() as conn:
        new = load_customer(conn, "acme", "C7")
    assert new is not None
    assert new.name == ""


# --- toggles: strict booleans and odd ids -----------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"all": "yes", "sms": "disable"}, "body.all"),
        ({"all": 1, "sms": "disable"}, "body.all"),
        ({"all": True, "sms": "disable", "dry_run": "true"}, "body.dry_run"),
        ({"contacts": "P1", "sms": "disable"}, "body.contacts"),
        ({"contacts": [["P1"]], "sms": "disable"}, "body.contacts[0]"),
        ({"contacts": [1], "sms": "disable"}, "body.contacts[0]"),
    ],
)
def test_bulk_toggles_take_json_booleans_and_lists_of_strings_only(
    api: Api, store: Services, body: dict[str, Any], field: str
) -> None:
    before = _org_rows(store, "acme")
    error = _error(api.call("POST", "/toggles/bulk", api.keys["edit"], json=body))
    assert error["details"][0]["field"] == field
    assert _org_rows(store, "acme") == before


#: Ids no contact can have that reach the routes (C0 controls in a URL are refused before them).
PATH_IDS = ["P1\u202e", "P1\x85", "P" * 1000]


@pytest.mark.parametrize("odd", PATH_IDS)
def test_a_path_id_no_contact_can_have_is_404_like_any_unknown_one(api: Api, odd: str) -> None:
    admin = api.keys["admin"]
    path = quote(odd, safe="")
    for method, url, body in (
        ("GET", f"/contacts/{path}", None),
        ("GET", f"/contacts/{path}/activity", None),
        ("PUT", f"/contacts/{path}/toggles", {"sms": "disable"}),
    ):
        error = _error(api.call(method, url, admin, json=body), 404)
        assert error == {"code": "not_found", "message": f"no contact {odd}", "details": []}


@pytest.mark.parametrize("odd", ["P1\x00", "\x00", "P1\n", *PATH_IDS])
def test_a_bulk_id_no_contact_can_have_is_a_failed_row_and_the_good_one_beside_it_changes(
    api: Api, odd: str
) -> None:
    """A NUL in a query was a 500 on PostgreSQL ("text fields cannot contain NUL")."""
    admin = api.keys["admin"]
    bulk = api.call("POST", "/toggles/bulk", admin, json={"contacts": [odd, "P1"], "sms": "disable"})
    assert bulk.status_code == 200, bulk.text
    assert bulk.json()["contacts"][0] == {"contact_id": odd, "result": "failed", "reason": "unknown contact"}
    assert bulk.json()["contacts"][1]["result"] == "changed"
    by_customer = api.call("POST", "/toggles/bulk", admin, json={"customer_id": odd, "sms": "enable"})
    assert by_customer.status_code == 200, by_customer.text
    assert by_customer.json()["contacts"] == []


# --- another organisation's ids, in every shape -----------------------------------------------

SHAPES = ["{}", " {}", "{} ", "{}\n", "{}\t", "\u200b{}", "lower"]


def _shaped(shape: str, ident: str) -> str:
    return ident.lower() if shape == "lower" else shape.format(ident)


def _swap(text: str) -> str:
    """An answer about the ids that exist nowhere (Q0, C0), read as about other's (Q9, C9)."""
    for nowhere, theirs in (("Q0", "Q9"), ("q0", "q9"), ("C0", "C9"), ("c0", "c9")):
        text = text.replace(nowhere, theirs)
    return text


def _same_answer(api: Api, theirs: tuple[str, str, Any], nowhere: tuple[str, str, Any], key: str) -> Any:
    answer = api.call(theirs[0], theirs[1], key, json=theirs[2])
    missing = api.call(nowhere[0], nowhere[1], key, json=nowhere[2])
    assert answer.status_code == missing.status_code, (theirs, answer.text, missing.text)
    assert answer.status_code < 500
    assert answer.text == _swap(missing.text), theirs
    return answer


@pytest.mark.parametrize("shape", SHAPES)
def test_another_organisations_contact_in_any_shape_answers_as_one_that_exists_nowhere(
    api: Api, store: Services, shape: str
) -> None:
    before = _org_rows(store, "other")

    def asks(contact: str, customer: str) -> list[tuple[str, str, Any]]:
        path = quote(contact, safe="")
        return [
            ("GET", f"/contacts/{path}", None),
            ("GET", f"/contacts/{path}/activity", None),
            ("PUT", f"/contacts/{path}/toggles", {"sms": "disable"}),
            ("PUT", f"/contacts/{path}/toggles?dry_run=true", {"notify": "disable"}),
            ("POST", "/toggles/bulk", {"contacts": [contact], "refunds": "disable"}),
            (
                "POST",
                "/toggles/bulk",
                {"contacts": [contact, "P1", contact], "sms": "disable", "dry_run": True},
            ),
            ("POST", "/toggles/bulk", {"customer_id": customer, "sms": "disable"}),
            ("POST", "/toggles/bulk", {"contacts": [contact], "sms": "disable", "org_id": "other"}),
        ]

    theirs = asks(_shaped(shape, "Q9"), _shaped(shape, "C9"))
    nowhere = asks(_shaped(shape, "Q0"), _shaped(shape, "C0"))
    for ask, missing in zip(theirs, nowhere, strict=True):
        answer = _same_answer(api, ask, missing, api.keys["admin"])
        if answer.status_code == 200:  # a bulk answer: their contact is a failed row, never changed
            rows = answer.json()["contacts"]
            assert all(row["result"] == "failed" for row in rows if row["contact_id"] != "P1")
    assert _org_rows(store, "other") == before


@pytest.mark.parametrize("theirs", ["C9", "C9 ", "c9", "C9\n", "\u202eC9"])
def test_put_customer_with_another_organisations_ids_never_touches_that_organisation(
    api: Api, store: Services, theirs: str
) -> None:
    before = _org_rows(store, "other")
    nowhere = theirs.replace("9", "0")
    edit = api.keys["edit"]
    hijack = {"contact_id": "Q9", "primary": True, "name": "Mallory", "mobile": "+358409999999"}
    hijack0 = {**hijack, "contact_id": "Q0"}
    for theirs_body, nowhere_body in (
        ({"org_id": "other", "name": "x"}, {"org_id": "nowhere", "name": "x"}),
        ({"org_id": ["other"], "name": "x"}, {"org_id": ["nowhere"], "name": "x"}),
        ({"customer_id": theirs, "contacts": [hijack]}, {"customer_id": nowhere, "contacts": [hijack0]}),
    ):
        answer = api.call("PUT", "/customers/C5", edit, json=theirs_body)
        missing = api.call("PUT", "/customers/C5", edit, json=nowhere_body)
        assert answer.status_code == missing.status_code == 422
        assert answer.text == _swap(missing.text.replace("nowhere", "other"))
    _same_answer(
        api,
        ("PUT", f"/customers/{quote(theirs, safe='')}", {"contacts": [hijack]}),
        ("PUT", f"/customers/{quote(nowhere, safe='')}", {"contacts": [hijack0]}),
        edit,
    )
    # acme may now have a C9 and a Q9 of its own; other's are exactly as they were.
    assert _org_rows(store, "other") == before
    assert api.call("GET", "/contacts/Q9", api.other_admin).json()["name"] == "Aino"


# --- the CLI, in-process on the same store ----------------------------------------------------


def _herald(settings: Settings, *args: str) -> Any:
    # Wide: usage errors are boxed by rich; keep their sentences on one line.
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"}, obj=settings)


def test_cli_toggles_and_show_treat_another_organisations_ids_as_nowhere(api: Api, store: Services) -> None:
    before = _org_rows(store, "other")
    for theirs, nowhere in (("Q9", "Q0"), ("q9", "q0"), ("Q9 ", "Q0 ")):
        answer = _herald(
            store.settings, "contacts", "toggles", "--org", "acme", "--contacts", theirs, "--sms", "disable"
        )
        missing = _herald(
            store.settings, "contacts", "toggles", "--org", "acme", "--contacts", nowhere, "--sms", "disable"
        )
        assert answer.exit_code == missing.exit_code == 1
        assert answer.output == missing.output.replace(nowhere.strip(), theirs.strip())
        assert f"{theirs.strip()}: failed: unknown contact" in answer.output
    by_customer = _herald(
        store.settings, "contacts", "toggles", "--org", "acme", "--customer", "C9", "--sms", "disable"
    )
    assert "0 changed, 0 unchanged, 0 failed" in by_customer.output
    shown = _herald(store.settings, "contacts", "show", "Q9", "--org", "acme")
    assert shown.exit_code == 1
    assert "error: no contact Q9 in organisation acme" in shown.output
    assert _org_rows(store, "other") == before


def test_cli_toggles_refuse_a_contacts_file_that_is_not_utf8_naming_the_line(
    api: Api, store: Services, tmp_path: Path
) -> None:
    before = _org_rows(store, "acme")
    ids = tmp_path / "ids.txt"
    ids.write_bytes(b"P1\r\nQ\xff9\r\n")
    result = _herald(
        store.settings,
        "contacts",
        "toggles",
        "--org",
        "acme",
        "--contacts-file",
        str(ids),
        "--sms",
        "disable",
    )
    assert result.exit_code == 2
    assert "line 2: not valid UTF-8: byte 0xff at byte 2" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert _org_rows(store, "acme") == before  # nothing applied from a file it could not read
