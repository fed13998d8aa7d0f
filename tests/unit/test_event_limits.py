"""Hostile and careless events (issue 13): amounts, booleans, URLs, control characters, nesting.

Each refusal names the field path and what was wrong; the published JSON Schema states the same
rules the validator enforces.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.errors import InvalidEvent
from schemas.events import event_json_schema
from schemas.validation import event_to_json, parse_event
from tests.factories import invoice_created, payment_received, reminder_due


def _refused(raw: Any, **limits: Any) -> str:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, **limits)
    return info.value.reason


def _nested(levels: int, leaf: Any = "x") -> Any:
    """``levels`` objects one inside the other, built without recursion."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


# -- amounts ----------------------------------------------------------------------------------

BAD_AMOUNTS = [
    "1e400",
    "1E+3",
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "123456789012345678901234567",  # 27 digits
    "1234567890123456",  # 16 integer digits
    "1.23456",  # 5 decimals
    " 12",
    "12 ",
    "12\n",
    "12.",
    ".5",
    "+5",
    "1_000",
    "1,50",
    "0x10",
    "١٢",  # Arabic-Indic digits: Decimal() reads them, the contract does not
    "",
]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
@pytest.mark.parametrize("field", ["total", "balance"])
def test_an_invoice_amount_outside_the_contract_pattern_is_refused_naming_the_field(
    field: str, amount: str
) -> None:
    reason = _refused(invoice_created(**{field: amount}))
    assert reason.startswith(f"data.invoice.{field}: ")
    assert "decimal string" in reason


@pytest.mark.parametrize("amount", ["1e400", "1E+3", "123456789012345678901234567", "-5.00"])
def test_a_payment_amount_outside_the_contract_is_refused(amount: str) -> None:
    event = payment_received()
    event["data"]["payment"]["amount"] = amount
    assert _refused(event).startswith("data.payment.amount: ")


def test_a_negative_total_is_refused_because_a_credit_note_is_not_an_invoice() -> None:
    reason = _refused(invoice_created(total="-10.00"))
    assert reason.startswith("data.invoice.total: must not be negative")
    assert reason == _refused(reminder_due_with(total="-10.00"))


def test_a_negative_balance_is_kept_an_invoice_paid_beyond_its_total() -> None:
    event = parse_event(invoice_created(total="100.00", balance="-20.00"))
    assert event_to_json(event)["data"]["invoice"]["balance"] == "-20.00"


def reminder_due_with(**invoice: Any) -> dict[str, Any]:
    event = reminder_due()
    event["data"]["invoice"].update(invoice)
    return event


@pytest.mark.parametrize(
    "amount", ["0", "0.00", "12.5", "1234.50", "999999999999999.9999", "007.10", "100000000000000"]
)
def test_amounts_within_the_contract_are_kept_exactly(amount: str) -> None:
    event = parse_event(invoice_created(total=amount, balance=amount))
    out = event_to_json(event)["data"]["invoice"]
    assert isinstance(out["total"], str)
    assert Decimal(out["total"]) == Decimal(amount)
    assert Decimal(out["balance"]) == Decimal(amount)


def _schema_amount_pattern(definition: str, field: str) -> str:
    prop = event_json_schema()["$defs"][definition]["properties"][field]
    assert prop["type"] == "string"
    return str(prop["pattern"])


def _validator_accepts(definition: str, field: str, amount: str) -> bool:
    if definition == "Payment":
        event = payment_received()
        event["data"]["payment"][field] = amount
    else:
        event = invoice_created(**{field: amount})
    try:
        parse_event(event)
    except InvalidEvent:
        return False
    return True


SAMPLES = [
    *BAD_AMOUNTS,
    "-10.00",
    "-0.5",
    "--1",
    "-",
    "0",
    "12.5",
    "999999999999999.9999",
    "-999999999999999.9999",
]


@pytest.mark.parametrize(
    ("definition", "field"), [("Invoice", "total"), ("Invoice", "balance"), ("Payment", "amount")]
)
def test_the_json_schema_states_the_amount_pattern_the_validator_enforces(
    definition: str, field: str
) -> None:
    pattern = _schema_amount_pattern(definition, field)
    for amount in SAMPLES:
        assert (re.fullmatch(pattern, amount) is not None) == _validator_accepts(definition, field, amount), (
            amount
        )
    assert (re.fullmatch(pattern, "-10.00") is not None) == (field == "balance")  # only a balance


PUBLISHED = {
    field: _schema_amount_pattern(d, field) for d, field in (("Invoice", "total"), ("Invoice", "balance"))
}


@settings(max_examples=300, deadline=None)
@given(
    amount=st.text(alphabet="0123456789.-+eE_ ,", max_size=24), field=st.sampled_from(["total", "balance"])
)
def test_schema_pattern_and_validator_agree_on_any_amount_string(amount: str, field: str) -> None:
    accepted = re.fullmatch(PUBLISHED[field], amount) is not None
    assert accepted == _validator_accepts("Invoice", field, amount)


# -- strict booleans --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", "true", "True", 1, 0, "1", None, "false"])
@pytest.mark.parametrize("field", ["send", "recurring"])
def test_invoice_flags_must_be_json_booleans(field: str, value: Any) -> None:
    reason = _refused(invoice_created(**{field: value}))
    assert reason.startswith(f"data.invoice.{field}: ")
    assert "boolean" in reason


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_the_payment_notify_flag_must_be_a_json_boolean(value: Any) -> None:
    event = payment_received()
    event["data"]["payment"]["notify"] = value
    assert _refused(event).startswith("data.payment.notify: ")


def test_json_booleans_are_still_accepted() -> None:
    event = parse_event(invoice_created(send=False, recurring=True))
    assert (event.data.invoice.send, event.data.invoice.recurring) == (False, True)  # type: ignore[union-attr]


def test_the_json_schema_types_the_flags_as_booleans() -> None:
    defs = event_json_schema()["$defs"]
    for definition, field in (("Invoice", "send"), ("Invoice", "recurring"), ("Payment", "notify")):
        assert defs[definition]["properties"][field]["type"] == "boolean"


# -- invoice URLs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "ftp://billing.example/i/1",
        "//billing.example/i/1",
        "/i/1",
        "https://",
        "https:///i/1",
        "billing.example/i/1",
    ],
)
def test_only_http_and_https_invoice_urls_are_accepted(url: str) -> None:
    reason = _refused(invoice_created(url=url))
    assert reason.startswith("data.invoice.url: ")
    assert "must be an http or https URL" in reason


@pytest.mark.parametrize(
    "url", ["https://billing.example/i/INV-1?t=1#x", "http://localhost:8080/i", "HTTPS://B.EXAMPLE/i"]
)
def test_http_and_https_invoice_urls_are_kept(url: str) -> None:
    assert parse_event(invoice_created(url=url)).data.invoice.url == url  # type: ignore[union-attr]


def test_the_json_schema_states_the_url_rule() -> None:
    pattern = event_json_schema()["$defs"]["Invoice"]["properties"]["url"]["pattern"]
    assert re.search(pattern, "https://billing.example/i/1")
    assert not re.search(pattern, "javascript:alert(1)")


# -- control and invisible characters ---------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "char"),
    [
        ("number", "1001\r\nBcc: victim@example.com", "U+000D"),
        ("number", "1001\nBcc: x", "U+000A"),
        ("number", "10\x0001", "U+0000"),
        ("number", "10\t01", "U+0009"),
        ("number", "10\x7f01", "U+007F"),
        ("number", "10\x8501", "U+0085"),  # C1: next line
        ("number", "10\u202e01", "U+202E"),  # right-to-left override
        ("number", "10\u200b01", "U+200B"),  # zero-width space
        ("number", "\ufeff1001", "U+FEFF"),
        ("number", "10\u206601", "U+2066"),
        ("number", "10\u202801", "U+2028"),  # line separator
        ("id", "INV\r\n1", "U+000D"),
        ("customer_id", "C1\u200f", "U+200F"),
        ("currency", "EU\r", "U+000D"),
        ("url", "https://billing.example/i/1\r\nX-Injected: 1", "U+000D"),
        ("mandate_id", "MD\n1", "U+000A"),
    ],
)
def test_control_and_invisible_characters_are_refused_naming_the_field_and_character(
    where: str, value: str, char: str
) -> None:
    reason = _refused(invoice_created(**{where: value}))
    assert reason.startswith(f"data.invoice.{where}: contains ")
    assert char in reason


def test_control_characters_in_envelope_and_payment_ids_are_refused() -> None:
    assert _refused({**invoice_created(), "org_id": "acme\r\n"}).startswith(
        "org_id: contains a control character U+000D"
    )
    assert _refused({**invoice_created(), "event_id": "e\x00"}).startswith(
        "event_id: contains a control character U+0000"
    )
    event = payment_received()
    event["data"]["payment"]["id"] = "PAY\n1"
    assert _refused(event).startswith("data.payment.id: contains a control character U+000A")


def test_the_example_of_the_issue_reads_as_documented() -> None:
    reason = _refused(invoice_created(number="1001\r\nBcc: x@example.com"))
    assert reason == "data.invoice.number: contains a control character U+000D"


def test_extra_fields_are_kept_as_they_came() -> None:
    event = parse_event(invoice_created(note="line one\nline two\ttabbed", tags=["a\u200bb"]))
    out = event_to_json(event)["data"]["invoice"]
    assert out["note"] == "line one\nline two\ttabbed"
    assert out["tags"] == ["a\u200bb"]


def test_a_lone_surrogate_anywhere_is_refused_because_it_is_not_unicode_text() -> None:
    # JSON can spell it ("\\ud800"); it cannot be encoded as UTF-8, so no store or SMTP takes it.
    text = json.dumps(invoice_created(note="x\ud800y"))
    assert _refused(text) == "data.invoice.note: contains a lone surrogate U+D800 (not valid Unicode text)"
    keyed = invoice_created()
    keyed["data"]["invoice"]["bad\udfffkey"] = 1
    assert "lone surrogate U+DFFF" in _refused(keyed)


def test_the_json_schema_states_the_character_rule_for_free_text_fields() -> None:
    pattern = event_json_schema()["$defs"]["Invoice"]["properties"]["number"]["pattern"]
    assert re.fullmatch(pattern, "INV 1001/A")
    for bad in ("1001\r\nBcc: x", "10\u202e01", "\ufeff1", "10\x0001"):
        assert not re.fullmatch(pattern, bad), repr(bad)


# -- nesting depth ----------------------------------------------------------------------------
#: HERALD_MAX_JSON_DEPTH's default; producers pass the setting (the default is only a ceiling).
DEPTH = 32


def test_deeply_nested_extra_data_is_refused_naming_the_field_and_the_limit() -> None:
    reason = _refused(invoice_created(extra=_nested(260)), max_depth=DEPTH)
    assert reason == "data.invoice.extra: nested deeper than 32 levels"
    event = invoice_created()
    event["data"]["extra"] = _nested(260)
    assert _refused(event, max_depth=DEPTH) == "data.extra: nested deeper than 32 levels"
    assert "nested deeper than 200 levels" in _refused(event)  # the ceiling when no limit is given


@pytest.mark.parametrize("levels", [260, 5000, 30_000])
def test_deep_nesting_in_json_text_is_refused_without_recursing(levels: int) -> None:
    prefix = json.dumps(invoice_created(extra="HOLE"))
    text = prefix.replace('"HOLE"', '{"a": ' * levels + "1" + "}" * levels)
    assert _refused(text, max_depth=DEPTH) == "data.invoice.extra: nested deeper than 32 levels"
    arrays = prefix.replace('"HOLE"', "[" * levels + "]" * levels)
    assert _refused(arrays, max_depth=DEPTH) == "data.invoice.extra: nested deeper than 32 levels"
    assert _refused(arrays.encode(), max_depth=DEPTH) == "data.invoice.extra: nested deeper than 32 levels"


def test_nesting_up_to_the_limit_is_accepted_and_one_more_level_is_not() -> None:
    # The event is level 1, data 2, invoice 3: extra's own objects start at level 4.
    fits = invoice_created(extra=_nested(29, leaf=1))
    kept = event_to_json(parse_event(fits, max_depth=DEPTH))["data"]["invoice"]["extra"]
    assert kept == fits["data"]["invoice"]["extra"]
    parse_event(json.dumps(fits), max_depth=DEPTH)
    over = invoice_created(extra=_nested(30, leaf=1))
    assert _refused(over, max_depth=DEPTH) == "data.invoice.extra: nested deeper than 32 levels"
    assert _refused(json.dumps(over), max_depth=DEPTH) == "data.invoice.extra: nested deeper than 32 levels"


def test_the_depth_limit_is_a_parameter() -> None:
    event = invoice_created(extra=_nested(5))
    assert _refused(event, max_depth=6) == "data.invoice.extra: nested deeper than 6 levels"
    parse_event(event, max_depth=8)


def test_a_deep_value_at_the_top_of_the_envelope_names_its_field() -> None:
    reason = _refused({**invoice_created(), "junk": [_nested(100)]}, max_depth=DEPTH)
    assert reason == "junk: nested deeper than 32 levels"


# -- what a reason shows of the input ---------------------------------------------------------


def test_an_unknown_type_is_shown_shortened_and_escaped() -> None:
    reason = _refused({**invoice_created(), "type": "x\r\n" + "y" * 5000})
    assert not {"\r", "\n"} & set(reason)
    assert len(reason) < 300


def test_an_odd_field_name_is_shown_escaped_in_the_path() -> None:
    reason = _refused({**invoice_created(), "bad\r\nname": 1})
    assert not {"\r", "\n"} & set(reason)
    assert "Extra inputs are not permitted" in reason


# -- the publishing API -----------------------------------------------------------------------


def test_the_publisher_refuses_a_deep_event_as_invalid_whether_a_mapping_or_a_model() -> None:
    from infra.settings import Settings
    from producers.publisher import Publisher
    from schemas.events import event_adapter

    publisher = Publisher(Settings(max_json_depth=32))
    deep = invoice_created("evt_deep", extra=_nested(260))
    with pytest.raises(InvalidEvent, match=r"data\.invoice\.extra: nested deeper than 32 levels"):
        publisher.encode(deep)
    model = event_adapter.validate_python(deep)  # a caller's own model skips parse_event
    with pytest.raises(InvalidEvent, match="evt_deep"):
        publisher.encode(model)
    with pytest.raises(InvalidEvent, match=r"event #1: .*nested deeper than 32 levels"):
        publisher.publish_many([invoice_created("evt_ok"), deep])
    middling = event_adapter.validate_python(invoice_created("evt_mid", extra=_nested(40)))
    with pytest.raises(InvalidEvent, match=r"evt_mid: data\.invoice\.extra: nested deeper than 32 levels"):
        publisher.encode(middling)


# -- herald publish's lines -------------------------------------------------------------------


def test_publish_reads_lines_as_bytes_skipping_an_oversized_one_without_holding_it() -> None:
    import io

    from producers.cli.publish import _lines

    limit = 1024
    data = b"".join(
        [
            b"\xef\xbb\xbf{1}\r\n",  # a byte order mark on line 1 is dropped
            b"x" * limit + b"\r\n",  # exactly at the limit, with a CRLF ending
            b"y" * (limit + 1) + b"\n",  # one over
            b"z" * (5 * limit) + b"\r\n",  # far over: read in pieces, counted
            b"   \n",  # blank
            b"\xff\xfe\x00",  # the last line, without an ending
        ]
    )
    got = [(n, None if line is None else line[:3], size) for n, line, size in _lines(io.BytesIO(data), limit)]
    assert got == [
        (1, b"{1}", 3),
        (2, b"xxx", limit),
        (3, None, limit + 1),
        (4, None, 5 * limit),
        (6, b"\xff\xfe\x00", 3),
    ]


def test_a_reason_lists_a_few_problems_and_counts_the_rest() -> None:
    # A reason travels in an AMQP header and an API answer: it stays short, however bad the event.
    event = {**invoice_created(), **{f"k{i}": 1 for i in range(5000)}}
    reason = _refused(event)
    assert reason.startswith("k0: Extra inputs are not permitted; k1: ")
    assert reason.endswith("(and 4990 more problems)")
    assert len(reason) < 1000
