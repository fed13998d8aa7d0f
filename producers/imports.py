"""Reading a directory file (JSON Lines or CSV) into customer records, row by row.

Every row yields a record or an error naming the row and what is wrong; one
bad row never stops the others. A CSV has one row per (customer, contact,
email address); the rows of one customer are imported together, so a customer
is never half-updated.

Files are read as bytes: a line that is not UTF-8, binary garbage, a line nested
deeper than the limit or longer than the limit is refused with its number and
the reason, and the lines around it are still read. Errors are safe to print:
control and formatting characters in them are shown escaped.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from infra.errors import InvalidInput
from schemas.bounded_json import find_string, loads_bounded, too_deep
from schemas.directory import CustomerRecord, forbidden_character

CSV_REQUIRED = ("org_id", "customer_id", "contact_id")
CSV_COLUMNS = (
    *CSV_REQUIRED,
    "customer_name",
    "customer_sms_enabled",
    "primary",
    "name",
    "mobile",
    "sms_enabled",
    "locale",
    "status",
    "email",
    "email_notify",
    "new_invoice",
    "pending_reminders",
    "payment_confirmation",
    "refunds",
)
_CONTACT_FIELDS = ("primary", "name", "mobile", "sms_enabled", "locale", "status")
#: Columns that hold names: they may hold the joiners and marks of real scripts (see schemas).
_NAME_COLUMNS = frozenset({"customer_name", "name"})
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character a terminal or log would act on or hide (controls, bidi and
    zero-width characters, lone surrogates) shown as an escape such as ``\\u202e``."""
    return text if text.isprintable() else "".join(c if c.isprintable() else _escape(c) for c in text)


@dataclass
class Row:
    """One customer's outcome: the record, or why its line(s) failed."""

    lines: list[int]
    record: CustomerRecord | None = None
    error: str | None = None
    #: For CSV: a new customer must be named (guards against a mistyped customer_id).
    named: bool = True

    def __post_init__(self) -> None:
        if self.error is not None:  # the reason may quote the input: never print it raw
            self.error = printable(self.error)


class HeaderError(InvalidInput):
    """The CSV header cannot be read; nothing in the file can be imported."""


class JsonRejected(InvalidInput):
    """A JSON document (an import line, a request body) that is refused: ``reason`` (what), the
    ``field`` path where it is (empty when it is the document as a whole), and its ``kind``
    (``not_utf8``, ``json_invalid``, ``too_deep``, ``not_unicode``)."""

    def __init__(self, reason: str, field: str = "", *, kind: str) -> None:
        self.field, self.kind = printable(field), kind
        super().__init__(f"{self.field}: {reason}" if self.field else reason)
        self.reason = reason


def _path(parts: list[str | int]) -> str:
    """``contacts[0].mobile`` from ``["contacts", 0, "mobile"]``."""
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(parts))


def _shortened(parts: tuple[str | int, ...]) -> str:
    return _path(list(parts[:4])) + ("…" if len(parts) > 4 else "")


def _is_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return f"not valid UTF-8: byte 0x{exc.object[exc.start]:02x} at byte {exc.start + 1}"


def load_json(raw: str | bytes, *, max_depth: int) -> Any:
    """Parse one JSON document (bytes must be UTF-8), refusing nesting deeper than ``max_depth``.

    Raises ``JsonRejected`` naming what is wrong: not UTF-8 (which byte), not JSON (where), too
    deep or a lone surrogate (the path). Never ``RecursionError``: a document too deep for the
    parser itself is refused the same way (``schemas.bounded_json``).
    """
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected(_not_utf8(exc), kind="not_utf8") from None
    try:
        document = loads_bounded(raw, max_depth)
    except json.JSONDecodeError as exc:
        raise JsonRejected(f"not valid JSON: {exc}", kind="json_invalid") from None
    where = too_deep(document, max_depth)
    if where is not None:
        raise JsonRejected(f"nested deeper than {max_depth} levels", _shortened(where), kind="too_deep")
    # JSON may spell a lone surrogate ("\\ud800"): it is not text, and no database or encoder takes it.
    found = find_string(document, _is_lone_surrogate)
    if found is not None:
        path, text = found
        char = next(c for c in text if _is_lone_surrogate(c))
        raise JsonRejected(
            f"not valid Unicode: a lone surrogate U+{ord(char):04X}", _shortened(path), kind="not_unicode"
        )
    return document


def describe_record_error(error: ValidationError) -> str:
    """``contacts[0].mobile: String should have at most 40 characters; ...``: each problem of a
    directory record with its field path (``(customer)`` for the record as a whole)."""
    return "; ".join(
        f"{_path(list(item['loc'])) or '(customer)'}: {item['msg']}"
        for item in error.errors(include_url=False)
    )


def json_type(value: Any) -> str:
    """``an array``, ``a number``...: what a JSON value is, for an error message."""
    return _JSON_TYPES.get(type(value), "a number")


def _lines(source: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(number, line, size) for each line; ``line`` is None when over ``limit`` bytes, and such a
    line is skipped in bounded chunks, never held whole in memory."""
    number = 0
    while chunk := source.readline(limit + 1):
        number += 1
        if len(chunk) <= limit or chunk.endswith(b"\n"):
            yield number, chunk, len(chunk.rstrip(b"\r\n"))
            continue
        size = len(chunk)
        while chunk and not chunk.endswith(b"\n"):
            chunk = source.readline(1 << 20)
            size += len(chunk)
        yield number, None, size - (1 if chunk.endswith(b"\n") else 0)


def read_jsonl(source: IO[bytes], *, max_line_bytes: int, max_depth: int) -> Iterator[Row]:
    """One customer per line; a customer listed twice in one file fails the second time.

    A line over ``max_line_bytes`` (a customer is bounded like a ``PUT /customers`` body) or
    nested deeper than ``max_depth`` is refused with the limit it passed.
    """
    seen: dict[tuple[str, str], int] = {}
    for number, line, size in _lines(source, max_line_bytes):
        if line is None:
            limit = f"the limit is {max_line_bytes} bytes (HERALD_API_MAX_BODY_BYTES)"
            yield Row([number], error=f"line is {size} bytes; {limit}")
            continue
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        if not line.strip():
            continue
        try:
            document = load_json(line, max_depth=max_depth)
        except JsonRejected as exc:
            yield Row([number], error=str(exc))
            continue
        if not isinstance(document, dict):
            yield Row(
                [number], error=f"a line must be a JSON object (one customer), got {json_type(document)}"
            )
            continue
        try:
            record = CustomerRecord.model_validate(document)
        except ValidationError as exc:
            yield Row([number], error=describe_record_error(exc))
            continue
        key = (record.org_id, record.customer_id)
        if key in seen:
            yield Row([number], error=f"duplicate customer {key[0]}/{key[1]} (first on line {seen[key]})")
            continue
        seen[key] = number
        yield Row([number], record=record)


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _flag(value: str, column: str, number: int) -> bool | None:
    """CSV's words for a toggle (true/false, yes/no, 1/0, on/off, any case; blank: not given)."""
    text = value.strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(
        f"{column}: {_shown(value)} is not true or false on line {number}"
        " (use true/false, yes/no, 1/0 or on/off)"
    )


def _cell_problem(number: int, row: dict[str, str]) -> str | None:
    """Why one CSV row cannot be read: a cell that is not UTF-8 or holds a character its column
    may not (checked here so the error names the column and the line, not a record path)."""
    for column, value in row.items():
        bad = next((c for c in value if 0xDC80 <= ord(c) <= 0xDCFF), None)  # an undecodable byte
        if bad is not None:
            return f"line {number}: {column}: not valid UTF-8 (byte 0x{ord(bad) - 0xDC00:02x})"
        found = forbidden_character(value, in_name=column in _NAME_COLUMNS)
        if found is not None:
            return f"line {number}: {column}: contains {found[1]} at character {found[0]}"
    return None


def _agreed(rows: list[tuple[int, dict[str, str]]], column: str, value: Callable[[str, int], Any]) -> Any:
    """The customer's value of ``column`` (``value`` reads a cell): the first given; a later row
    may leave it blank but not give another."""
    chosen: Any = None
    for number, row in rows:
        this = value(row.get(column, ""), number)
        if this is None or this == "":
            continue
        if chosen is None:
            chosen = this
        elif this != chosen:
            customer = row["customer_id"].strip()
            raise ValueError(f"line {number}: customer {customer} has other {column} than on an earlier line")
    return chosen


def _customer(rows: list[tuple[int, dict[str, str]]]) -> tuple[dict[str, Any], bool]:
    first = rows[0][1]
    contacts: dict[str, dict[str, Any]] = {}
    addresses: set[tuple[str, str]] = set()
    for number, row in rows:
        cid = row["contact_id"].strip()
        fields = {
            "contact_id": cid,
            "primary": _flag(row.get("primary", ""), "primary", number) or False,
            "name": row.get("name", "").strip(),
            "mobile": row.get("mobile", "").strip() or None,
            "sms_enabled": _flag(row.get("sms_enabled", ""), "sms_enabled", number),
            "locale": row.get("locale", "").strip() or "en",
            "status": row.get("status", "").strip() or "active",
        }
        contact = contacts.setdefault(cid, {**fields, "emails": []})
        clashes = [f for f in _CONTACT_FIELDS if contact[f] != fields[f]]
        if clashes:
            raise ValueError(
                f"line {number}: contact {cid} has other {', '.join(clashes)} than on an earlier line"
            )
        address = row.get("email", "").strip()
        if address:
            if (cid, address.lower()) in addresses:
                raise ValueError(f"line {number}: duplicate row for contact {cid} and {address}")
            addresses.add((cid, address.lower()))
            categories = {
                c: flag
                for c in ("new_invoice", "pending_reminders", "payment_confirmation", "refunds")
                if (flag := _flag(row.get(c, ""), c, number)) is not None
            }
            notify = _flag(row.get("email_notify", ""), "email_notify", number)
            contact["emails"].append(
                {"address": address, "notify": True if notify is None else notify, "categories": categories}
            )
    sms = _agreed(
        rows, "customer_sms_enabled", lambda cell, number: _flag(cell, "customer_sms_enabled", number)
    )
    name = _agreed(rows, "customer_name", lambda cell, _number: cell.strip()) or ""
    record = {
        "org_id": first["org_id"].strip(),
        "customer_id": first["customer_id"].strip(),
        "name": name,
        "sms_enabled": True if sms is None else sms,
        "contacts": list(contacts.values()),
    }
    return record, bool(name)


def read_csv(source: IO[bytes]) -> Iterator[Row]:
    """Rows grouped by customer; raises ``HeaderError`` for an unusable header.

    A bad row (not UTF-8, a forbidden character, cells beyond the header) fails its whole
    customer, so no customer is imported without one of its rows.
    """
    # Undecodable bytes become lone surrogates, reported with their cell; a leading
    # byte-order mark (as spreadsheets write) is dropped.
    text = io.TextIOWrapper(source, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        rows = _read_csv_rows(csv.reader(text))
    finally:
        text.detach()  # the caller's stream stays the caller's to close
    yield from rows


def _read_csv_rows(reader: Any) -> list[Row]:  # a csv.reader: its line_num names each row
    """Every customer's row of a CSV, in the order of their first lines."""
    try:
        header = [printable(h.strip()) for h in next(reader, [])]
    except csv.Error as exc:
        raise HeaderError(f"bad CSV header: {exc}") from None
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        raise HeaderError(f"bad CSV header: {'; '.join(problems)} (columns: {', '.join(CSV_COLUMNS)})")
    out: list[Row] = []
    groups: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
    refused: dict[tuple[str, str], str] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the csv module's limit: that row alone
            out.append(Row([reader.line_num], error=f"line {reader.line_num}: {exc}"))
            continue
        number = reader.line_num
        if not cells:
            continue
        row = {column: cells[i] if i < len(cells) else "" for i, column in enumerate(header)}
        key = (row["org_id"].strip(), row["customer_id"].strip())
        groups.setdefault(key, []).append((number, row))
        if len(cells) > len(header):
            problem: str | None = f"line {number}: {len(cells) - len(header)} cell(s) beyond the header"
        else:
            problem = _cell_problem(number, row)
        if problem is not None:
            refused.setdefault(key, problem)
    for key, rows in groups.items():
        lines = [n for n, _ in rows]
        if key in refused:
            out.append(Row(lines, error=refused[key]))
            continue
        try:
            data, named = _customer(rows)
            out.append(Row(lines, record=CustomerRecord.model_validate(data), named=named))
        except ValidationError as exc:
            out.append(Row(lines, error=describe_record_error(exc)))
        except ValueError as exc:
            out.append(Row(lines, error=str(exc)))
    return sorted(out, key=lambda r: r.lines[0])


def read_directory(path: Path, *, max_line_bytes: int, max_depth: int) -> Iterator[Row]:
    """JSON Lines unless the file name ends in ``.csv``; the limits bound each JSON line."""
    with path.open("rb") as source:
        if path.suffix.lower() == ".csv":
            yield from read_csv(source)
        else:
            yield from read_jsonl(source, max_line_bytes=max_line_bytes, max_depth=max_depth)
