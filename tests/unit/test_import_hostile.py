"""Hostile and careless directory input (issue 13): control and bidi characters, extensions,
blank names, loose booleans, and files with bad lines (not UTF-8, binary, too deep, too big).

Each bad row is refused naming where (line, field path or column) and what; the good rows
beside it are still read.
"""

from __future__ import annotations

import codecs
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from producers.imports import JsonRejected, Row, load_json, read_csv, read_jsonl
from producers.operations.directory import phone_problems
from schemas.directory import CustomerRecord, forbidden_character
from schemas.phones import extension, to_e164
from tests.factories import customer

LIMIT = 4096  # one line's bytes in these tests
DEPTH = 32


def _refusal(record: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        CustomerRecord.model_validate(record)
    errors = caught.value.errors(include_url=False)
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)


def _with_contact(**fields: Any) -> dict[str, Any]:
    return customer(contacts=[{"contact_id": "P1", "primary": True, **fields}])


# --- characters -------------------------------------------------------------------------------

INVISIBLE = [
    ("\x00", "U+0000 NUL"),
    ("\n", "U+000A LINE FEED"),
    ("\x1b", "U+001B ESCAPE"),
    ("\x85", "U+0085 CONTROL CHARACTER"),
    ("\u200b", "U+200B ZERO WIDTH SPACE"),
    ("\u200f", "U+200F RIGHT-TO-LEFT MARK"),
    ("\u202e", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("\u2066", "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ("\ufeff", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
]


@pytest.mark.parametrize(("char", "named"), INVISIBLE)
def test_ids_numbers_and_addresses_refuse_controls_zero_width_and_bidi_naming_field_and_character(
    char: str, named: str
) -> None:
    assert f"customer_id: contains {named} at character 3" in _refusal(customer(f"C1{char}"))
    assert f"contacts.0.contact_id: contains {named} at character 2" in _refusal(
        customer(contacts=[{"contact_id": f"P{char}1"}])
    )
    assert f"contacts.0.mobile: contains {named} at character 5" in _refusal(
        _with_contact(mobile=f"+358{char}401234567")
    )
    address = _with_contact(emails=[{"address": f"aino{char}@example.fi"}])
    assert f"contacts.0.emails.0.address: contains {named} at character 5" in _refusal(address)
    org = {**customer(), "org_id": f"acme{char}"}
    assert f"org_id: contains {named} at character 5" in _refusal(org)


@pytest.mark.parametrize(
    ("char", "named"),
    [
        ("\x00", "U+0000 NUL"),
        ("\r", "U+000D CARRIAGE RETURN"),
        ("\t", "U+0009 TAB"),
        ("\x9b", "U+009B CONTROL CHARACTER"),
        ("\u2028", "U+2028 LINE SEPARATOR"),
        ("\u202d", "U+202D LEFT-TO-RIGHT OVERRIDE"),
        ("\u2069", "U+2069 POP DIRECTIONAL ISOLATE"),
        ("\ud800", "U+D800 SURROGATE"),
    ],
)
def test_names_refuse_controls_line_breaks_and_bidi_overrides(char: str, named: str) -> None:
    record = {**customer(), "name": f"Acme{char} Oy"}
    assert f"name: contains {named} at character 5" in _refusal(record)
    assert f"contacts.0.name: contains {named} at character 2" in _refusal(_with_contact(name=f"A{char}ino"))


def test_names_keep_the_joiners_and_marks_that_real_scripts_need() -> None:
    names = ["مهر\u200cنوش", "👩\u200d💻 Aino", "\u05d3\u05e0\u05d4\u200f (HR)", "Zero\u200bwidth"]
    for name in names:
        record = CustomerRecord.model_validate({**customer(), "name": name})
        assert record.name == name


def test_the_forbidden_character_rule_says_what_and_where() -> None:
    assert forbidden_character("Aino", in_name=True) is None
    assert forbidden_character("A\u202eino", in_name=True) == (2, "U+202E RIGHT-TO-LEFT OVERRIDE")
    assert forbidden_character("A\u200bino", in_name=True) is None
    assert forbidden_character("A\u200bino", in_name=False) == (2, "U+200B ZERO WIDTH SPACE")


# --- phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ext"),
    [("+358 40 1234567 ext 9", "9"), ("+358401234567;ext=123", "123"), ("040 1234567 x 42", "42")],
)
def test_a_number_with_an_extension_is_never_stored_as_another_number(raw: str, ext: str) -> None:
    assert extension(raw, "FI") == ext
    assert to_e164(raw, "FI") is None  # not "+358401234567": that is not the number given
    record = CustomerRecord.model_validate(_with_contact(mobile=raw))
    assert phone_problems(record, "FI") == [
        (
            "contacts[0].mobile",
            f"{raw!r} has an extension ({ext}); SMS cannot dial an extension: give the mobile number alone",
        )
    ]


def test_a_number_without_an_extension_has_no_problem() -> None:
    assert extension("+358 40 1234567", "FI") is None
    assert extension("12345", "FI") is None  # does not parse: a warning at import, not a refusal
    record = CustomerRecord.model_validate(_with_contact(mobile="040 1234567"))
    assert phone_problems(record, "FI") == []


# --- names and booleans -----------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_or_missing_name_is_no_name_so_an_upsert_keeps_the_stored_one(blank: str | None) -> None:
    record = CustomerRecord.model_validate(
        {**customer(), "name": blank, "contacts": [{"contact_id": "P1", "name": blank}]}
    )
    assert (record.name, record.contacts[0].name) == (None, None)
    missing = CustomerRecord.model_validate(
        {"org_id": "acme", "customer_id": "C1", "contacts": [{"contact_id": "P1"}]}
    )
    assert (missing.name, missing.contacts[0].name) == (None, None)


@pytest.mark.parametrize("loose", ["yes", "true", 1, 0, "1", 1.0])
def test_booleans_in_an_import_row_are_json_booleans_only(loose: Any) -> None:
    cases = {
        "sms_enabled": {**customer(), "sms_enabled": loose},
        "contacts.0.primary": _with_contact(primary=loose),
        "contacts.0.sms_enabled": _with_contact(sms_enabled=loose),
        "contacts.0.emails.0.notify": _with_contact(emails=[{"address": "a@x.fi", "notify": loose}]),
        "contacts.0.emails.0.categories.refunds": _with_contact(
            emails=[{"address": "a@x.fi", "categories": {"refunds": loose}}]
        ),
    }
    for path, record in cases.items():
        assert f"{path}: Input should be a valid boolean" in _refusal(record), path


# --- JSON Lines ----------------------------------------------------------------------------------


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def _deep(levels: int) -> bytes:
    return b'{"org_id": "acme", "customer_id": "CD", "contacts": ' + b"[" * levels + b"]" * levels + b"}\n"


def _jsonl(data: bytes) -> list[Row]:
    return list(read_jsonl(io.BytesIO(data), max_line_bytes=LIMIT, max_depth=DEPTH))


def test_each_bad_jsonl_line_is_refused_with_its_number_and_the_rest_read() -> None:
    not_utf8 = b'{"org_id": "acme", "customer_id": "C2", "name": "Acme \xff Oy"}'
    huge = b'{"org_id": "acme", "customer_id": "CH", "name": "' + b"x" * (LIMIT * 3) + b'"}'
    data = b"".join(
        [
            b"\xef\xbb\xbf" + _line(customer("C1")),  # a byte-order mark, as some editors write
            not_utf8 + b"\n",
            b"\x89PNG\r\x1a\x00\x00\x00\rIHDR\x00\x00\x01\x00\n",  # binary garbage
            _deep(260),
            _deep(1900),  # deeper than the JSON parser itself goes
            huge + b"\n",
            b"[1, 2]\n",
            b"\n",  # blank lines are skipped, and still counted
            _line(customer("C9")),
        ]
    )
    rows = _jsonl(data)
    bad_byte = not_utf8.index(b"\xff") + 1
    assert [r.lines for r in rows] == [[1], [2], [3], [4], [5], [6], [7], [9]]
    assert rows[0].record is not None
    assert rows[0].record.customer_id == "C1"
    assert [r.error for r in rows[1:7]] == [
        f"not valid UTF-8: byte 0xff at byte {bad_byte}",
        "not valid UTF-8: byte 0x89 at byte 1",
        f"contacts{'[0]' * 3}…: nested deeper than {DEPTH} levels",
        f"contacts{'[0]' * 3}…: nested deeper than {DEPTH} levels",  # too deep for json.loads too
        f"line is {len(huge)} bytes; the limit is {LIMIT} bytes (HERALD_API_MAX_BODY_BYTES)",
        "a line must be a JSON object (one customer), got an array",
    ]
    assert rows[7].record is not None
    assert rows[7].record.customer_id == "C9"


def test_a_jsonl_line_names_the_field_and_the_character() -> None:
    rows = _jsonl(_line({**customer(), "name": "Acme\u202e Oy"}) + _line(customer("C2")))
    assert rows[0].error == "name: contains U+202E RIGHT-TO-LEFT OVERRIDE at character 5"
    assert rows[1].record is not None


def test_a_hostile_field_name_is_shown_escaped_never_printed_raw() -> None:
    rows = _jsonl(_line({**customer(), "\x1b[2J\u202e": 1}) + _line([{"\ud800": 1}]))
    assert rows[0].error == "\\x1b[2J\\u202e: Extra inputs are not permitted"
    # JSON may spell a lone surrogate (\\ud800); it is not text, wherever it is.
    assert rows[1].error == "[0].\\ud800: not valid Unicode: a lone surrogate U+D800"


def test_load_json_bounds_depth_and_names_where() -> None:
    assert load_json('{"a": [[1]]}', max_depth=3) == {"a": [[1]]}
    with pytest.raises(JsonRejected) as deep:
        load_json('{"a": [{"b": [1]}]}', max_depth=3)
    assert (deep.value.field, deep.value.reason) == ("a[0].b", "nested deeper than 3 levels")
    with pytest.raises(JsonRejected) as parser_deep:  # deeper than json.loads itself can go
        load_json("[" * 50_000 + "]" * 50_000, max_depth=3)
    assert str(parser_deep.value) == "[0][0][0]: nested deeper than 3 levels"
    with pytest.raises(JsonRejected) as surrogate:
        load_json('{"a": ["ok", "x\\udc00"]}', max_depth=3)
    assert str(surrogate.value) == "a[1]: not valid Unicode: a lone surrogate U+DC00"
    with pytest.raises(JsonRejected) as not_utf8:
        load_json(b'{"a": "\xc3"}', max_depth=3)
    assert (not_utf8.value.kind, str(not_utf8.value)) == ("not_utf8", "not valid UTF-8: byte 0xc3 at byte 8")


# --- CSV ------------------------------------------------------------------------------------------

HEADER = b"org_id,customer_id,customer_name,customer_sms_enabled,contact_id,primary,name,mobile,email\n"


def _csv(data: bytes) -> dict[int, Row]:
    return {row.lines[0]: row for row in read_csv(io.BytesIO(data))}


def test_each_bad_csv_row_is_refused_with_its_line_and_column_and_the_rest_read() -> None:
    rows = _csv(
        b"\xef\xbb\xbf"
        + HEADER
        + b"acme,C1,Acme,,P1,true,Aino,,a@x.fi\n"
        + b"acme,C2,Beta \xff,,P2,true,B,,\n"
        + b"acme,C3,Gamma,,P3,true,C\x00,,\n"
        + b"acme,C4,Delta,,P4,true,D,+358\xe2\x80\x8b401234567,\n"
        + b"acme,C5,Eps,,P5,true,"
        + b"x" * 200_000
        + b",,\n"
        + b"acme,C6,Zeta,true,P6,true,Z,,z@x.fi\n"
        + b"acme,C6,Zeta,nope,P6,true,Z,,z2@x.fi\n"
        + b"acme,C7,Eta,true,P7,true,E,,e@x.fi\n"
        + b"acme,C7,Eta,false,P7,true,E,,e2@x.fi\n"
        + b"acme,C8,Theta,,P8,true,T,,\n"
    )
    assert rows[2].record is not None
    assert rows[2].record.name == "Acme"
    assert rows[3].error == "line 3: customer_name: not valid UTF-8 (byte 0xff)"
    assert rows[4].error == "line 4: name: contains U+0000 NUL at character 2"
    assert rows[5].error == "line 5: mobile: contains U+200B ZERO WIDTH SPACE at character 5"
    assert rows[6].error is not None
    assert rows[6].error.startswith("line 6: field larger than field limit")
    assert rows[7].error == (
        "customer_sms_enabled: 'nope' is not true or false on line 8 (use true/false, yes/no, 1/0 or on/off)"
    )
    assert rows[9].error == "line 10: customer C7 has other customer_sms_enabled than on an earlier line"
    assert rows[11].record is not None
    assert rows[11].record.customer_id == "C8"


def test_csv_flags_keep_the_documented_words() -> None:
    rows = _csv(HEADER + b"acme,C1,Acme,OFF,P1,Yes,Aino,,\nacme,C1,,,P1,Yes,Aino,,\n")
    record = rows[2].record
    assert record is not None
    assert (record.sms_enabled, record.contacts[0].primary) == (False, True)  # a blank later row agrees


# --- property: whatever a line holds, it is reported and its neighbours still read --------------

_hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\x00", "\u202e", "\ufeff", "\ud800", "\r\n", "ext 9", "+358 40 1234567 ext 9"]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=260),
)
_json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), _hostile_text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_hostile_text, inner, max_size=3),
    max_leaves=20,
)
_fields = st.sampled_from(["org_id", "customer_id", "name", "sms_enabled", "contacts", "extra"])
_contact_fields = st.sampled_from(["contact_id", "primary", "name", "mobile", "sms_enabled", "emails"])
_hostile_record = st.fixed_dictionaries(
    {"org_id": st.just("acme"), "customer_id": st.just("CX")},
    optional={
        "name": _json_value,
        "sms_enabled": _json_value,
        "contacts": st.lists(
            st.dictionaries(_contact_fields, _json_value, max_size=4).map(
                lambda c: {"contact_id": "PX", **c}
            ),
            max_size=3,
        ),
    },
).flatmap(lambda r: st.dictionaries(_fields, _json_value, max_size=2).map(lambda extra: {**r, **extra}))
_hostile_line = st.one_of(
    _hostile_record.map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=200).filter(lambda b: b"\n" not in b and b.strip()),
    st.integers(min_value=DEPTH, max_value=2000).map(lambda n: b"[" * n + b"]" * n),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_hostile_line, min_size=1, max_size=5))
def test_hostile_lines_are_each_reported_and_the_good_line_beside_them_is_read(lines: list[bytes]) -> None:
    good = json.dumps(customer("GOOD")).encode()
    data = b"\n".join([*lines, good]) + b"\n"
    rows = _jsonl(data)
    # A UTF-8 byte-order mark opening the file marks its encoding: it is no line of its own.
    blank = [
        (line.removeprefix(codecs.BOM_UTF8) if n == 1 else line).strip() == b""
        for n, line in enumerate([*lines, good], start=1)
    ]
    assert [r.lines[0] for r in rows] == [n for n, is_blank in enumerate(blank, start=1) if not is_blank]
    for row in rows:
        assert (row.record is None) != (row.error is None)
        # A reason, never the input echoed back whole, and safe to print on a terminal.
        assert row.error is None or (len(row.error) < 2000 and row.error.isprintable())
    last = rows[-1]
    assert last.record is not None
    assert last.record.customer_id == "GOOD"
