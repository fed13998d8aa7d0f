"""Hypothesis strategies for hostile and careless input: huge strings, deep nesting, control,
bidi and zero-width characters, wrong types, non-UTF-8 bytes, and the other organisation's ids.

Items of a batch carry a verdict, so a property knows what the api must do with each:

* ``good``: a valid event (or row) of acme, the caller's organisation, in any shape herald accepts
  (an object, its JSON text, escaped); it must be published (imported).
* ``bad``: what the contract, with issue 13's bounds, refuses: another organisation's event in any
  shape, a wrong type, a value outside its pattern, control characters in a field that reaches an
  email header, nesting past the depth limit, a value past a size limit. It must be rejected and
  reported with its index (or line number); nothing of it may be published.
* ``either``: hostile but not refused by any rule herald states (bidi marks in a number, a
  ``javascript:`` URL, which is a rendering decision): either outcome is right, as long as the
  answer is clean and an accepted one is acme's own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from hypothesis import strategies as st

from tests.factories import customer, invoice_created, payment_received, reminder_due

Verdict = Literal["good", "bad", "either"]

# -- hostile scalars -------------------------------------------------------------------------

#: C0 controls that break headers and lines, NUL, ESC, DEL, and C1's NEL.
CONTROL = ("\r", "\n", "\r\n", "\x00", "\x1b", "\x7f", "\x85", "\x0b", "\x0c")
#: Invisible and direction-changing characters: zero-width, BOM, and every bidi override/isolate.
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
BIDI = ("\u200e", "\u200f", "\u061c", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2069")
#: Line separators a careless splitter (``str.splitlines``) cuts a line at.
SEPARATORS = ("\u2028", "\u2029", "\x1c", "\x1d", "\x1e")
#: A lone surrogate: valid in a JSON text (``"\\ud800"``), not encodable as UTF-8.
SURROGATES = ("\ud800", "\udfff")
#: What a careless upstream sends for a boolean; the contract's booleans are strict.
BOOLEAN_LOOKALIKES: tuple[Any, ...] = ("yes", "no", "true", "false", "True", "1", "0", "on", "off", "", 1, 0)
#: Amounts the contract's pattern (``^-?\d+(\.\d+)?$``, sane precision and size) refuses.
BAD_AMOUNTS: tuple[Any, ...] = (
    "1e400",
    "1E+3",
    "1e-7",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "1" * 27,
    "9" * 40 + ".99",
    "1,234.50",
    "1 234.50",
    "0x10",
    "",
    " 12.00",
    "12.00\n",
    "+12.00",
    "12.3.4",
    ".5",
    "5.",
    "--1",
    1234.5,
    1234,
    float("nan"),
    float("inf"),
    True,
    None,
    ["12.00"],
    {"amount": "12.00"},
)
#: Ids outside ``^[A-Za-z0-9_.:\-]+$`` (1 to 200 characters).
BAD_IDS: tuple[Any, ...] = (
    "",
    " ",
    "INV 1",
    "INV-1\r\n",
    "INV-1\x00",
    "\u202eINV-1",
    "INV\u200b-1",
    "../../etc/passwd",
    "INV/1",
    "INV?1=1",
    "\uff29\uff2e\uff36-1",  # fullwidth
    "%00",
    "x" * 201,
    1,
    1.5,
    True,
    None,
    ["INV-1"],
    {"id": "INV-1"},
)
#: Not the caller's organisation, in every spelling: the other one, look-alikes, wrong types.
OTHER_ORG_IDS: tuple[Any, ...] = (
    "other",
    "OTHER",
    "Other",
    "other ",
    " other",
    "other\u200b",
    "\u200bacme",
    "acme\u200b",
    "acme\x00",
    "acme ",
    "ACME",
    "acme\n",
    "acme,other",
    "acme other",
    "nobody",
    ["acme"],
    ["other"],
    {"org_id": "acme"},
    None,
    1,
    "",
)
#: The other organisation's ids (customer C9, contact Q9, invoice INV-9): valid ids, but not acme's.
OTHER_TENANT_IDS = ("C9", "Q9", "INV-9", "PM0OTHER", "evt_INV-9")


def pick(*options: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One of ``options``, each as likely: ``st.one_of`` leans hard on some branches (its choice is
    mutated and shrunk like any other), and a fuzzer must visit every kind of hostility."""
    return st.sampled_from(options).flatmap(lambda option: option)


def huge_string(min_size: int = 70_000, max_size: int = 90_000) -> st.SearchStrategy[str]:
    """One character repeated past every field and event limit (ASCII, so its JSON stays that size)."""
    return st.builds(lambda c, n: c * n, st.sampled_from("xA9-"), st.integers(min_size, max_size))


class DeepList(list[Any]):
    """The outermost level of a deep array: printed short (a repr hundreds of levels deep would
    blow the recursion limit of hypothesis's and pytest's reporting, hiding the real failure)."""

    depth = 0

    def __repr__(self) -> str:
        return f"<array nested {self.depth} levels>"

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(repr(self))


class DeepDict(dict[str, Any]):
    """The outermost level of a deep object, printed short (see ``DeepList``)."""

    depth = 0

    def __repr__(self) -> str:
        return f"<object nested {self.depth} levels>"

    def _repr_pretty_(self, printer: Any, _cycle: bool) -> None:
        printer.text(repr(self))


def build_nested(depth: int, shape: str = "list", leaf: Any = None) -> Any:
    """``depth`` levels of arrays (``list``), objects (``dict``) or both (``mixed``) around ``leaf``."""
    value = leaf
    for level in range(depth - 1):
        kind = shape if shape != "mixed" else ("list" if level % 2 else "dict")
        value = [value] if kind == "list" else {"a": value}
    outer: Any = DeepList([value]) if shape == "list" else DeepDict(a=value)
    outer.depth = depth
    return outer


def nested(min_depth: int = 40, max_depth: int = 400) -> st.SearchStrategy[Any]:
    """Arrays and objects nested hundreds of levels deep (past ``max_json_depth``, 32)."""
    return st.builds(
        build_nested,
        st.integers(min_depth, max_depth),
        st.sampled_from(["list", "dict", "mixed"]),
        st.sampled_from([None, 1, "x", "other", {}]),
    )


def deep_json_text(min_depth: int = 1000, max_depth: int = 5000) -> st.SearchStrategy[str]:
    """JSON text nested deeper than a recursive parser can go (RecursionError, not a clean 4xx)."""
    return st.builds(
        lambda depth, array: "[" * depth + "]" * depth if array else '{"a":' * depth + "1" + "}" * depth,
        st.integers(min_depth, max_depth),
        st.booleans(),
    )


def with_control(base: str = "1001") -> st.SearchStrategy[str]:
    """``base`` with a control character before, inside or after it (header injection and all)."""
    return st.builds(
        lambda c, where, tail: {0: c + base, 1: base[:2] + c + base[2:], 2: base + c + tail}[where],
        st.sampled_from(CONTROL),
        st.integers(0, 2),
        st.sampled_from(["", "Bcc: victim@example.com", "Subject: hi", "\r\n"]),
    )


def with_invisible(base: str = "1001") -> st.SearchStrategy[str]:
    """``base`` with bidi, zero-width or separator characters: hostile, not refused by any rule."""
    return st.builds(
        lambda c, where: {0: c + base, 1: base[:2] + c + base[2:], 2: base + c}[where],
        st.sampled_from(BIDI + INVISIBLE + SEPARATORS),
        st.integers(0, 2),
    )


wrong_types: st.SearchStrategy[Any] = pick(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)

#: Any JSON-ish value at all, hostile strings included, for fields no rule constrains.
anything: st.SearchStrategy[Any] = pick(
    wrong_types,
    st.text(max_size=50),
    st.sampled_from(CONTROL + INVISIBLE + BIDI + SEPARATORS + SURROGATES),
    nested(2, 20),
)

# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One batch item (or file line) with what must happen to it; ``event_id`` when it is acme's."""

    payload: Any
    verdict: Verdict
    event_id: str | None
    why: str

    def __repr__(self) -> str:  # the payload may be huge or hundreds of levels deep
        return f"Item({self.verdict}: {self.why})"


Change = Callable[[dict[str, Any]], None]
KINDS = ("invoice.created", "reminder.due", "payment.received")
_kinds = st.sampled_from(KINDS)


def _event(kind: str, event_id: str) -> dict[str, Any]:
    if kind == "invoice.created":
        return invoice_created(event_id)
    if kind == "reminder.due":
        return reminder_due(event_id)
    return payment_received(event_id)


def _body(event: dict[str, Any]) -> dict[str, Any]:
    """The invoice (or payment) object of an event, to change in place."""
    data = event["data"]
    return data["invoice"] if "invoice" in data else data["payment"]


def _set(path: str, value: Any) -> Change:
    """A change setting ``path`` (dotted; ``$`` is the invoice or payment) to ``value``."""

    def apply(event: dict[str, Any]) -> None:
        target: Any = event
        *parents, last = path.split(".")
        for part in parents:
            target = _body(event) if part == "$" else target[part]
        target[last] = value

    return apply


def _setting(
    path: str, values: st.SearchStrategy[Any], label: str | None = None
) -> st.SearchStrategy[tuple[Change, str]]:
    return values.map(lambda v: (_set(path, v), f"{label or path} = {v!r:.80}"))


def _pop(name: str) -> tuple[Change, str]:
    return (lambda event: event.pop(name)), f"{name} missing"


_amount = st.from_regex(r"\A[1-9][0-9]{0,8}(\.[0-9]{2})?\Z", fullmatch=True)
_number = st.text(
    alphabet=st.characters(categories=["L", "N"], max_codepoint=0x2FFF) | st.sampled_from(" -/#"),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() == s)
_good_shapes = st.sampled_from(["object", "json", "escaped_json"])


@st.composite
def _good_event(draw: st.DrawFn, event_id: str) -> Item:
    kind = draw(_kinds)
    event = _event(kind, event_id)
    body = _body(event)
    if "number" in body:
        body["number"] = draw(_number)
        body["total"] = body["balance"] = draw(_amount)
        body["send"], body["recurring"] = draw(st.booleans()), draw(st.booleans())
    else:
        body["amount"] = draw(_amount)
        body["notify"] = draw(st.booleans())
    if draw(st.booleans()):  # acme may use ids the other organisation also uses: still acme's own
        body["customer_id"] = "C9"
    shape = draw(_good_shapes)
    payload: Any = event
    if shape == "json":
        payload = json.dumps(event, ensure_ascii=False)
    elif shape == "escaped_json":
        payload = json.dumps(event).replace('"acme"', '"\\u0061cme"')
    return Item(payload, "good", event_id, f"valid {kind} as {shape}")


@functools.cache
def good_event(event_id: str) -> st.SearchStrategy[Item]:
    """A valid acme event, perhaps naming the other organisation's ids as acme's own, as an object
    or its JSON text (escaped or not)."""
    return _good_event(event_id)


def _twice(text: str) -> str:
    return text.replace('"org_id": ', '"org_id": "acme", "org_id": ', 1)


#: Every shape an event of another organisation may come in; each must be refused.
OTHER_ORG_SHAPES: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...] = (
    ("object", lambda e: e),
    ("JSON string", json.dumps),
    ("JSON string of a JSON string", lambda e: json.dumps(json.dumps(e))),
    ("array holding the event", lambda e: [e]),
    ("JSON string of an array holding the event", lambda e: json.dumps([e])),
    ("object wrapping the event", lambda e: {"event": e}),
    ("JSON string with org_id twice, acme first", lambda e: _twice(json.dumps(e))),
    ("JSON string with the org_id escaped", lambda e: json.dumps(e).replace('"other"', '"\\u006fther"')),
    ("pretty-printed JSON string", lambda e: json.dumps(e, indent=2)),
    ("JSON string after a BOM", lambda e: "\ufeff" + json.dumps(e)),
)
_other_shapes = st.sampled_from(OTHER_ORG_SHAPES)
_other_orgs = st.sampled_from(OTHER_ORG_IDS + ("other",) * 6)  # mostly the real other tenant


@st.composite
def _other_org_event(draw: st.DrawFn, event_id: str) -> Item:
    event = _event(draw(_kinds), event_id)
    org: Any = draw(_other_orgs)
    if draw(st.integers(0, 9)) == 0:
        del event["org_id"]
        org = "(missing)"
    else:
        event["org_id"] = org
    if org in ("other", "(missing)") and draw(st.booleans()):  # and other's customer and invoice
        body = _body(event)
        body["customer_id"] = "C9"
        body["id" if "number" in body else "invoice_id"] = "INV-9"
    shape, build = draw(_other_shapes)
    return Item(build(event), "bad", None, f"org_id {org!r} as {shape}")


@functools.cache
def other_org_event(event_id: str) -> st.SearchStrategy[Item]:
    """An event of another organisation (or with no usable org_id) in any shape: refused."""
    return _other_org_event(event_id)


@functools.cache
def _bad_changes(kind: str) -> st.SearchStrategy[tuple[Change, str]]:
    """One change that makes an acme event of ``kind`` invalid under the contract."""
    invoice = kind != "payment.received"
    money = ("$.total", "$.balance") if invoice else ("$.amount",)
    flags = ("$.send", "$.recurring") if invoice else ("$.notify",)
    ids = ("event_id", "$.customer_id", "$.id" if invoice else "$.invoice_id")
    options: list[st.SearchStrategy[tuple[Change, str]]] = [
        st.tuples(st.sampled_from(money), st.sampled_from(BAD_AMOUNTS)).map(
            lambda p: (_set(*p), f"{p[0]} = {p[1]!r}")
        ),
        st.tuples(st.sampled_from(flags), st.sampled_from(BOOLEAN_LOOKALIKES)).map(
            lambda p: (_set(*p), f"{p[0]} = {p[1]!r}")
        ),
        st.tuples(st.sampled_from(ids), st.sampled_from(BAD_IDS)).map(
            lambda p: (_set(*p), f"{p[0]} = {p[1]!r:.80}")
        ),
        _setting("$.currency", st.sampled_from(["eur", "EURO", "E", "€", 978, None])),
        _setting(
            "occurred_at",
            st.sampled_from(
                ["2026-11-23T10:00:00", "2026-11-23", "NaN", "", "yesterday", "2026-11-23T25:00:00Z"]
            ),
        ),
        _setting(
            "type", st.sampled_from(["invoice.deleted", "INVOICE.CREATED", "", None, 1, ["invoice.created"]])
        ),
        _setting("data.extra", nested()),
        _setting("$.note", nested(), "an extra field"),
        _setting("$.note", huge_string(), "an extra field"),
        st.sampled_from(["data", "occurred_at", "event_id", "type"]).map(_pop),
        _setting("data", st.sampled_from([None, [], "data", 1, {"invoice": None}])),
        st.sampled_from(["unexpected", "org", "Org_id"]).map(
            lambda f: (_set(f, "acme"), f"unknown field {f!r}")
        ),
    ]
    if invoice:
        options += [
            _setting("$.number", with_control()),
            _setting("$.number", huge_string(101, 5000)),
            _setting("$.number", st.sampled_from([1001, None, "", ["1001"]])),
            _setting("$.due_date", st.sampled_from(["2026-02-30", "2026-13-01", "01.12.2026", "", "NaN"])),
            _setting("$.url", huge_string(2001, 5000)),
            _setting("$.collection", st.sampled_from(["DIRECT_DEBIT", "", "card", 1])),
        ]
    if kind == "reminder.due":
        options.append(
            _setting("data.reminder.offset_days", st.sampled_from([366, -366, 3.5, "NaN", None, 10**30]))
        )
    if kind == "payment.received":
        options.append(_setting("$.method", st.sampled_from(["ONLINE", "", "card", None])))
    return pick(*options)


_bad_changes_any = st.sampled_from(KINDS).flatmap(lambda kind: st.tuples(st.just(kind), _bad_changes(kind)))


@st.composite
def _invalid_event(draw: st.DrawFn, event_id: str) -> Item:
    kind, (change, why) = draw(_bad_changes_any)
    event = _event(kind, event_id)
    change(event)
    payload: Any = event
    if draw(st.booleans()):
        payload = json.dumps(event, allow_nan=True)
    return Item(payload, "bad", None, why)


@functools.cache
def invalid_event(event_id: str) -> st.SearchStrategy[Item]:
    """An acme event the contract (with issue 13's bounds) refuses, as an object or its JSON text."""
    return _invalid_event(event_id)


#: A batch item that is no event at all: scalars, arrays, junk text, JSON that is not an object.
not_an_event: st.SearchStrategy[Item] = pick(
    wrong_types,
    st.text(max_size=40),
    st.sampled_from(['{"type": "invoice.created", ', "{", "null", "[]", "{}", '"x"', "1e400", "NaN", ""]),
    deep_json_text(),
    nested(40, 300),
    st.sampled_from(SURROGATES + CONTROL),
).map(lambda payload: Item(payload, "bad", None, f"not an event: {payload!r:.60}"))

_ambiguous_changes: st.SearchStrategy[tuple[Change, str]] = pick(
    _setting("$.number", with_invisible()),
    _setting("$.number", st.sampled_from(SURROGATES).map(lambda s: s + "1001")),
    _setting(
        "$.url", st.sampled_from(["javascript:alert(1)", "data:text/html,x", "http://a\r\nb", "ftp://x"])
    ),
    _setting("$.note", anything, "an extra field"),
    st.sampled_from(["-10.00", "0", "0.001", "١٢٣", "00012.50"]).map(
        lambda v: ((lambda e: _body(e).update(total=v, balance=v)), f"amounts = {v!r}")
    ),
    # A field named org_id inside the data, not the envelope: the event is still acme's.
    st.just((_set("$.org_id", "other"), "data.invoice.org_id = 'other'")),
)


@st.composite
def _ambiguous_event(draw: st.DrawFn, event_id: str) -> Item:
    event = _event(draw(st.sampled_from(KINDS[:2])), event_id)
    change, why = draw(_ambiguous_changes)
    change(event)
    return Item(event, "either", event_id, why)


@functools.cache
def ambiguous_event(event_id: str) -> st.SearchStrategy[Item]:
    """An acme event with hostile values no stated rule refuses: either outcome, cleanly."""
    return _ambiguous_event(event_id)


_item_kinds = st.sampled_from(["good", "good", "other", "other", "invalid", "ambiguous", "junk"])


@st.composite
def event_batch(draw: st.DrawFn, max_size: int = 10) -> list[Item]:
    """A batch for ``POST /events``: good, bad and ambiguous items mixed, every event id distinct."""
    makers = {
        "good": good_event,
        "other": other_org_event,
        "invalid": invalid_event,
        "ambiguous": ambiguous_event,
    }
    items = []
    for index in range(draw(st.integers(1, max_size))):
        kind = draw(_item_kinds)  # sampled first: one_of's own choice leans hard on some branches
        items.append(draw(not_an_event if kind == "junk" else makers[kind](f"evt_fz_{index}")))
    return items


@st.composite
def tenant_batch(draw: st.DrawFn, max_size: int = 8) -> list[Item]:
    """Good events of acme and events of another organisation in every shape, nothing else: the
    cross-tenant property on its own, so no other failure hides it."""
    return [
        draw((good_event if draw(st.booleans()) else other_org_event)(f"evt_ten_{index}"))
        for index in range(draw(st.integers(1, max_size)))
    ]


def encode_batch(items: list[Item]) -> bytes:
    """The batch as the JSON text a careless client sends (NaN and lone surrogates included)."""
    return json.dumps([item.payload for item in items], allow_nan=True).encode()


def _raw_forms(payload: Any) -> tuple[Any, ...]:
    text = payload if isinstance(payload, str) else json.dumps(payload, allow_nan=True)
    raw = text.encode("utf-8", "surrogatepass")
    return (payload, text, raw, raw[:-5] + b"\xff\xfe\xfd}", b"\xef\xbb\xbf" + raw)


_deep_event = st.builds(
    lambda depth: {**invoice_created("evt_deep"), "data": {"invoice": build_nested(depth, "dict")}},
    st.integers(900, 3000),
)

#: What ``parse_event`` may be handed: text, bytes (non-UTF-8 too) or a decoded object.
raw_event_input: st.SearchStrategy[Any] = pick(
    st.tuples(
        st.one_of(good_event("evt_raw"), invalid_event("evt_raw"), other_org_event("evt_raw")),
        st.integers(0, 4),
    ).map(lambda p: _raw_forms(p[0].payload)[p[1]]),
    st.binary(max_size=200),
    st.sampled_from([b"\xff\xfe{}", b'{"type": "invoice.created\xff"}', b"\xc3\x28", b"\xed\xa0\x80"]),
    deep_json_text(),
    deep_json_text().map(str.encode),
    nested(40, 3000),
    _deep_event,
    st.text(max_size=100),
    st.sampled_from(SURROGATES).map(lambda s: json.dumps(invoice_created()).replace("1001", s)),
    wrong_types,
)


# -- lines of files (herald publish, herald contacts import) ------------------------------


@dataclass(frozen=True)
class Line:
    """One line of a file (its bytes, no line end) with what must happen to it; ``key`` names what
    a good line becomes (an event id, ``org/customer``)."""

    raw: bytes
    verdict: Verdict
    key: str | None
    why: str

    def __repr__(self) -> str:
        return f"Line({self.verdict}: {self.why}: {self.raw[:80]!r})"


def _undecodable_event(event_id: str) -> tuple[bytes, ...]:
    text = json.dumps(invoice_created(event_id))
    return (
        text.replace("1001", "10\udcff01").encode("utf-8", "surrogateescape"),
        b"\xff\xfe" + text.encode(),
        text.encode("utf-16"),
        text.encode().replace(b"Z", b"\xc3"),
        text.encode()[:-1] + b"\xed\xa0\x80}",
        bytes(range(0x80, 0xA0)),
    )


_line_kinds = st.sampled_from(["good", "good", "good", "bytes", "json", "deep", "invalid"])
_junk_lines = st.sampled_from(['{"type": "invoice.created", ', "{", "[1, 2]", "null", '"text"', "1e400"])
#: Raw separators inside a string: the line is still one line of JSON Lines.
SEPARATED_NOTE = "a\u2028b\u0085c\u2029d"


@st.composite
def _publish_line(draw: st.DrawFn, index: int) -> Line:
    event_id = f"evt_fl_{index}"
    kind = draw(_line_kinds)
    if kind == "good":
        payload = draw(good_event(event_id)).payload
        obj = json.loads(payload) if isinstance(payload, str) else payload
        verdict: Verdict = "good"
        if draw(st.booleans()):
            _body(obj)["note"], verdict = SEPARATED_NOTE, "either"
        end = draw(st.sampled_from([b"", b"\r"]))  # a CRLF file
        return Line(json.dumps(obj, ensure_ascii=False).encode() + end, verdict, event_id, "a valid event")
    if kind == "bytes":
        raw = draw(st.sampled_from(_undecodable_event(event_id)))
        return Line(raw.replace(b"\n", b" "), "bad", None, "not UTF-8")
    if kind == "json":
        return Line(draw(_junk_lines).encode(), "bad", None, "not a JSON object")
    if kind == "deep":
        event = invoice_created(event_id)
        extra = event["data"]["extra"] = draw(nested(40, 900))
        return Line(json.dumps(event).encode(), "bad", None, f"data.extra = {extra!r}")
    item = draw(invalid_event(event_id))
    text = item.payload if isinstance(item.payload, str) else json.dumps(item.payload, allow_nan=True)
    return Line(text.encode("utf-8", "surrogatepass"), "bad", None, item.why)


@functools.cache
def publish_line(index: int) -> st.SearchStrategy[Line]:
    """Line ``index`` of a ``herald publish`` file: its bytes, verdict and event id when good."""
    return _publish_line(index)


@st.composite
def publish_file(draw: st.DrawFn, max_lines: int = 8) -> list[Line]:
    """Lines of a ``herald publish`` file: good events and bad lines (non-UTF-8, not JSON, nested too
    deep, invalid). The CLI has no key: any organisation is its operator's to publish for."""
    return [draw(publish_line(index)) for index in range(draw(st.integers(1, max_lines)))]


def good_row(customer_id: str, contact_id: str) -> dict[str, Any]:
    """A valid directory row of acme: one customer, its primary contact with an address."""
    row = customer(customer_id)
    row["contacts"] = [
        {
            "contact_id": contact_id,
            "primary": True,
            "name": "Aino Ääninen",
            "mobile": "+358 40 1234567",
            "locale": "fi",
            "emails": [{"address": f"{contact_id.lower()}@example.fi"}],
        }
    ]
    return row


def _put(path: str, value: Any) -> Change:
    """A change setting ``path`` of a row (dotted, list indexes as numbers) to ``value``."""

    def apply(row: dict[str, Any]) -> None:
        target: Any = row
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return apply


def _putting(
    path: str, values: st.SearchStrategy[Any], label: str | None = None
) -> st.SearchStrategy[tuple[Change, str]]:
    return values.map(lambda v: (_put(path, v), f"{label or path} = {v!r:.60}"))


_row_body_changes: list[st.SearchStrategy[tuple[Change, str]]] = [
    _putting("contacts.0.contact_id", st.sampled_from(BAD_IDS)),
    _putting("contacts", st.sampled_from([None, "P1", {"contact_id": "P1"}, 1])),
    _putting(
        "contacts.0.emails.0.address",
        st.sampled_from(["not-an-address", "a@b", "", "a b@example.fi", "x" * 400 + "@example.fi"]),
    ),
    _putting("name", huge_string(201, 3000)),
    st.sampled_from(["unknown", "Org", "contact"]).map(lambda f: (_put(f, "x"), f"unknown field {f!r}")),
    _putting("contacts.0.name", nested()),
    _putting("contacts.0.locale", st.sampled_from(["xx-invalid-locale", "", "e", "EN", 1])),
    _putting("contacts.0.status", st.sampled_from(["gone", "", None, 1])),
]
#: One change that makes a directory row's body invalid (its org and id untouched).
bad_row_body = pick(*_row_body_changes)
#: One change that makes a whole directory line invalid, org and id included.
bad_row = pick(
    *_row_body_changes,
    _putting("org_id", st.sampled_from(BAD_IDS)),
    _putting("customer_id", st.sampled_from(BAD_IDS)),
)
_either_row_changes = pick(
    st.tuples(
        st.sampled_from(["name", "contacts.0.name", "contacts.0.mobile"]),
        st.one_of(with_control("Aino"), with_invisible("Aino"), st.sampled_from(SURROGATES)),
    ).map(lambda p: (_put(*p), f"{p[0]} = {p[1]!r}")),
    st.tuples(
        st.sampled_from(["sms_enabled", "contacts.0.primary", "contacts.0.sms_enabled"]),
        st.sampled_from((*BOOLEAN_LOOKALIKES, None)),
    ).map(lambda p: (_put(*p), f"{p[0]} = {p[1]!r}")),
)
#: A body's customer_id that is never the path's (the property puts rows at C1, C9 and CX).
_mismatched_ids = st.sampled_from(["C1\u200b", "c1", "C9 ", "other", None, 1, ["C1"]])
_contact_ids = st.sampled_from(["P1", "P2", "Q9"])


@st.composite
def hostile_row(draw: st.DrawFn) -> tuple[Any, Verdict, str]:
    """A body for ``PUT /customers/{id}`` (org and id come from the key and the path)."""
    row = good_row("C1", draw(_contact_ids))
    del row["org_id"], row["customer_id"]
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return row, "good", "a valid row"
    if choice == 1:
        row["org_id"] = draw(st.sampled_from(OTHER_ORG_IDS))
        return row, "bad", f"org_id {row['org_id']!r} in the body"
    if choice == 2:
        row["customer_id"] = draw(_mismatched_ids)
        return row, "bad", f"customer_id {row['customer_id']!r} in the body, not the path's"
    if choice == 3:
        change, why = draw(bad_row_body)
        change(row)
        return row, "bad", why
    if choice == 4:
        change, why = draw(_either_row_changes)
        change(row)
        return row, "either", why
    return draw(pick(wrong_types, nested(40, 300), st.just([row]))), "bad", "not an object"


_row_kinds = st.sampled_from(["good", "good", "good", "bytes", "json", "invalid"])
_junk_rows = st.sampled_from(['{"org_id": "acme", ', "{", "[]", "null", "1e400", '{"a": ' * 5000])


@st.composite
def _import_line(draw: st.DrawFn, index: int) -> Line:
    customer_id, contact_id = f"CF{index}", f"PF{index}"
    row = good_row(customer_id, contact_id)
    kind = draw(_row_kinds)
    if kind == "good":
        verdict: Verdict = "good"
        if draw(st.booleans()):  # a raw separator inside a string: still one line of JSON Lines
            row["name"], verdict = "Oy Ääkkönen \u2028 Ab", "either"
        return Line(
            json.dumps(row, ensure_ascii=False).encode(), verdict, f"acme/{customer_id}", "a valid row"
        )
    if kind == "bytes":
        text = json.dumps(row, ensure_ascii=False)
        choices = (
            text.replace("Aino", "Ai\udcffno").encode("utf-8", "surrogateescape"),
            b"\xff\xfe" + text.encode(),
            text.encode("latin-1", "replace"),
            text.encode("utf-16"),
        )
        return Line(draw(st.sampled_from(choices)).replace(b"\n", b" "), "bad", None, "not UTF-8")
    if kind == "json":
        return Line(draw(_junk_rows).encode(), "bad", None, "not a JSON object")
    change, why = draw(bad_row)
    change(row)
    return Line(json.dumps(row, allow_nan=True).encode(), "bad", None, why)


@functools.cache
def import_line(index: int) -> st.SearchStrategy[Line]:
    """Line ``index`` of a ``herald contacts import`` file: bytes, verdict, ``org/customer`` if good."""
    return _import_line(index)


@st.composite
def import_file(draw: st.DrawFn, max_lines: int = 8) -> list[Line]:
    """Lines of a ``herald contacts import`` JSON Lines file: good rows (distinct customers) and bad."""
    return [draw(import_line(index)) for index in range(draw(st.integers(1, max_lines)))]


_actions = st.sampled_from(["keep", "enable", "disable", "KEEP", "on", True, None, 1, "", "enable\x00"])
_toggle_fields = st.sampled_from(
    ["sms", "notify", "new_invoice", "pending_reminders", "payment_confirmation", "refunds", "org_id", "all"]
)
#: A body for ``PUT /contacts/{id}/toggles``: valid actions, hostile values and shapes.
toggles_body: st.SearchStrategy[Any] = pick(
    st.dictionaries(_toggle_fields, _actions, max_size=4),
    wrong_types,
    nested(40, 300),
    st.just({"sms": "disable", "org_id": "other"}),
)

_selector_ids = st.sampled_from(["P1", "Q9", "C9", "C1", "", "Q9\x00", "x" * 300, "Q9' OR '1'='1", 9])
#: A body for ``POST /toggles/bulk``: the other organisation's ids in every selector.
bulk_body: st.SearchStrategy[Any] = pick(
    st.fixed_dictionaries(
        {"sms": st.sampled_from(["disable", "enable"])},
        optional={
            "contacts": st.one_of(st.lists(_selector_ids, max_size=5), _selector_ids),
            "customer_id": st.one_of(_selector_ids, st.none()),
            "all": st.sampled_from([True, False, "yes", 1, None]),
            "dry_run": st.sampled_from([True, False, "no"]),
            "org_id": st.sampled_from(["other", "acme"]),
        },
    ),
    wrong_types,
    nested(40, 300),
)

#: Ids for a path segment: the other tenant's, look-alikes, control characters, huge.
path_ids: st.SearchStrategy[str] = pick(
    st.sampled_from((*OTHER_TENANT_IDS, "C1", "P1", "INV-1")),
    st.sampled_from([i for i in BAD_IDS if isinstance(i, str) and i]),
    # NUL on its own: PostgreSQL refuses it in any text, SQLite stores it, so it takes both stores.
    st.sampled_from(OTHER_TENANT_IDS).map(lambda i: i[:2] + "\x00" + i[2:]),
    with_control("INV-9"),
    with_invisible("INV-9"),
    huge_string(300, 5000),
    st.text(min_size=1, max_size=30),
)

# -- provider callbacks --------------------------------------------------------------------

_hostile_form_value = pick(
    st.text(max_size=30),
    huge_string(65, 3000),
    with_control("SM1"),
    with_invisible("SM1"),
    st.sampled_from(["", "²", "١٢", "1e400", "-1", "9" * 30, "NaN", "30003", "0"]),
)
#: A status callback's form: real statuses and hostile values in every field Twilio sends.
twilio_form: st.SearchStrategy[dict[str, str]] = st.fixed_dictionaries(
    {
        "MessageStatus": st.sampled_from(["delivered", "failed", "undelivered", "sent", "sending", "queued"])
        | _hostile_form_value
    },
    optional={
        "MessageSid": st.just("SM" + "a" * 32) | _hostile_form_value,
        "ErrorCode": st.sampled_from(["30003", "21610"]) | _hostile_form_value,
        "AccountSid": st.just("AC" + "0" * 32) | _hostile_form_value,
        "To": st.just("+358401234567") | _hostile_form_value,
        "OrgId": st.sampled_from(["other", "acme"]),
    },
)

#: A notification id for a callback URL (the property adds the other tenant's real one).
twilio_ids: st.SearchStrategy[str] = pick(
    st.sampled_from(["ntf_0", "ntf_" + "f" * 32, "ntf_" + "f" * 100, "x", "ntf_XYZ", "NTF_1", "ntf_-1"]),
    st.text(alphabet="abcdef0123456789_ntf", min_size=1, max_size=50),
    huge_string(100, 2000),
)

_gc_ids = st.sampled_from(["PM0OTHER", "PM123", "MD123", "CU123", "BRQ123", "", "../customers", "PM\x00"])
#: One entry of a GoCardless webhook's ``events``: well formed, malformed, or no object at all.
gocardless_event: st.SearchStrategy[Any] = pick(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(["EV1", "EV2", "EVX" * 50, ""]) | wrong_types,
            "resource_type": st.sampled_from(
                ["payments", "mandates", "customers", "billing_requests", "refunds"]
            )
            | anything,
            "action": st.sampled_from(["confirmed", "created", "failed", "cancelled"]) | anything,
            "links": st.fixed_dictionaries(
                {},
                optional={
                    k: _gc_ids | wrong_types for k in ("payment", "mandate", "customer", "billing_request")
                },
            )
            | anything,
            "created_at": st.sampled_from(["2026-11-23T10:00:00Z", "never", ""]) | wrong_types,
            "metadata": st.just({"herald_org_id": "other"}) | anything,
        },
    ),
    wrong_types,
    st.text(max_size=20),
    nested(40, 300),
)

#: A webhook body (the property signs it): ``events`` hostile, or the whole body hostile.
gocardless_body: st.SearchStrategy[bytes] = pick(
    st.lists(gocardless_event, max_size=6).map(lambda events: json.dumps({"events": events}).encode()),
    st.one_of(wrong_types, st.dictionaries(st.text(max_size=8), anything, max_size=3)).map(
        lambda events: json.dumps({"events": events}).encode()
    ),
    anything.map(lambda value: json.dumps(value).encode()),
    deep_json_text().map(str.encode),
    st.binary(max_size=100),
    st.just(b'{"events": [' + b'{"a": ' * 2000 + b"1" + b"}" * 2000 + b"]}"),
)
