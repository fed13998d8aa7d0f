"""The consent trail and the suppressions over HTTP under hostile input, on a real store (SQLite
and PostgreSQL): ``GET /contacts/{id}/consent``, ``GET /suppressions`` and
``DELETE /suppressions/{address}``.

Another organisation's contact or suppressed address, in whatever shape, answers exactly as one
that exists nowhere and is never changed; odd path values are a 4xx in the one error shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.consent import consent_trail
from infra.store.suppression import suppress_address
from infra.store.tables import contact_emails
from tests.integration.api.conftest import Api

#: Their contact (Q9) and its address, suppressed; ``nowhere`` forms exist in no organisation.
THEIR_ADDRESS, NOWHERE_ADDRESS = "q9@example.fi", "q0@example.fi"
SHAPES = ["{}", " {}", "{} ", "{}\t", "\u200b{}", "upper", "%{}"]


def _shaped(shape: str, ident: str) -> str:
    return ident.upper() if shape == "upper" else shape.format(ident)


@pytest.fixture
def suppressed(api: Api, store: Services) -> Api:
    """Both organisations' addresses suppressed after a bounce: a trail row each."""
    with store.transaction() as conn:
        suppress_address(conn, "other", THEIR_ADDRESS, "550 no such user", actor="test")
        suppress_address(conn, "acme", "p1@example.fi", "550 no such user", actor="test")
    return api


def _theirs(store: Services) -> tuple[Any, ...]:
    """What only the other organisation holds here: its suppression and its trail."""
    with store.reading() as conn:
        rows = conn.execute(select(contact_emails).where(contact_emails.c.org_id == "other")).all()
        return tuple(map(tuple, rows)), tuple(str(r) for r in consent_trail(conn, "other", "Q9"))


def _swap(text: str) -> str:
    for nowhere, theirs in (("Q0", "Q9"), ("q0", "q9")):
        text = text.replace(nowhere, theirs)
    return text


@pytest.mark.parametrize("shape", SHAPES)
def test_their_contacts_trail_in_any_shape_answers_as_one_that_exists_nowhere(
    suppressed: Api, store: Services, shape: str
) -> None:
    before = _theirs(store)
    for key in (suppressed.keys["view"], suppressed.keys["admin"]):
        for reveal in ("", "?reveal=true"):
            theirs = suppressed.call(
                "GET", f"/contacts/{quote(_shaped(shape, 'Q9'), safe='')}/consent{reveal}", key
            )
            nowhere = suppressed.call(
                "GET", f"/contacts/{quote(_shaped(shape, 'Q0'), safe='')}/consent{reveal}", key
            )
            assert theirs.status_code == nowhere.status_code, theirs.text
            assert theirs.status_code in (400, 404)  # 400: a control character in the path
            assert theirs.text == _swap(nowhere.text)
            assert set(theirs.json()["error"]) == {"code", "message", "details"}
    assert _theirs(store) == before


@pytest.mark.parametrize("shape", SHAPES)
def test_their_suppressed_address_in_any_shape_is_never_listed_nor_lifted(
    suppressed: Api, store: Services, shape: str
) -> None:
    before = _theirs(store)
    admin = suppressed.keys["admin"]
    listed = suppressed.call("GET", "/suppressions", admin)
    assert listed.status_code == 200
    assert [row["address"] for row in listed.json()["suppressions"]] == ["p1@example.fi"]
    assert "q9" not in listed.text.lower()
    theirs = suppressed.call(
        "DELETE", f"/suppressions/{quote(_shaped(shape, THEIR_ADDRESS), safe='')}", admin
    )
    nowhere = suppressed.call(
        "DELETE", f"/suppressions/{quote(_shaped(shape, NOWHERE_ADDRESS), safe='')}", admin
    )
    assert theirs.status_code == nowhere.status_code, (theirs.text, nowhere.text)
    assert theirs.status_code in (400, 404, 422)
    assert theirs.text == _swap(nowhere.text)
    assert _theirs(store) == before


def test_their_own_key_sees_and_lifts_their_suppression(suppressed: Api, store: Services) -> None:
    """The same requests with the other organisation's key do reach it: the scoping is the key's."""
    listed = suppressed.call("GET", "/suppressions", suppressed.other_admin)
    assert [row["address"] for row in listed.json()["suppressions"]] == [THEIR_ADDRESS]
    lifted = suppressed.call("DELETE", f"/suppressions/{THEIR_ADDRESS}", suppressed.other_admin)
    assert lifted.json() == {"address": THEIR_ADDRESS, "lifted": 1}
    mine = suppressed.call("GET", "/suppressions", suppressed.keys["admin"])
    assert [row["address"] for row in mine.json()["suppressions"]] == ["p1@example.fi"]


@pytest.mark.parametrize("odd", ["P1\u202e", "P1\x85", "P" * 1000, "😀" * 300])
def test_an_odd_contact_id_in_the_trails_path_is_404_like_any_unknown_one(suppressed: Api, odd: str) -> None:
    answer = suppressed.call("GET", f"/contacts/{quote(odd, safe='')}/consent", suppressed.keys["view"])
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == {"code": "not_found", "message": f"no contact {odd}", "details": []}


@pytest.mark.parametrize("odd", ["a" * 321 + "@example.fi", "p1@example.fi\x85", "p1\u2028@example.fi"])
def test_an_odd_address_to_lift_is_422_naming_the_path_and_lifts_nothing(
    suppressed: Api, store: Services, odd: str
) -> None:
    answer = suppressed.call("DELETE", f"/suppressions/{quote(odd, safe='')}", suppressed.keys["admin"])
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"] == [{"field": "path.address"}]
    listed = suppressed.call("GET", "/suppressions", suppressed.keys["admin"])
    assert [row["address"] for row in listed.json()["suppressions"]] == ["p1@example.fi"]


@pytest.mark.parametrize("control", ["\x7f", "\t", "\x1b"])
def test_a_control_character_in_either_path_is_400_naming_its_position(suppressed: Api, control: str) -> None:
    for url in (f"/contacts/P1{quote(control)}/consent", f"/suppressions/p1{quote(control)}@example.fi"):
        method = "GET" if url.startswith("/contacts") else "DELETE"
        error = suppressed.call(method, url, suppressed.keys["admin"]).json()["error"]
        assert error["code"] == "bad_request"
        assert error["details"][0]["field"] == "path"
        assert error["details"][0]["position"] == url.index(quote(control))
    listed = suppressed.call("GET", "/suppressions", suppressed.keys["admin"])
    assert [row["address"] for row in listed.json()["suppressions"]] == ["p1@example.fi"]


def test_lifting_needs_an_edit_key_and_reading_a_view_key(suppressed: Api) -> None:
    refused = suppressed.call("DELETE", "/suppressions/p1@example.fi", suppressed.keys["view"])
    assert refused.status_code == 403, refused.text
    assert suppressed.call("GET", "/suppressions", None).status_code == 401
    assert suppressed.call("GET", "/contacts/P1/consent", None).status_code == 401
    trail = suppressed.call("GET", "/contacts/P1/consent", suppressed.keys["view"]).json()["consent"]
    assert [row["toggle"] for row in trail][-1].endswith("suppressed")
    assert "p1@example.fi" not in str(trail)  # masked unless an admin reveals it
