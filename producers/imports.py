"""Reading a directory file (JSON Lines or CSV) into customer records, row by row.

Every row yields a record or an error naming the row and what is wrong; one
bad row never stops the others. A CSV has one row per (customer, contact,
email address); the rows of one customer are imported together, so a customer
is never half-updated.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.directory import CustomerRecord
from schemas.validation import describe_validation_error

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
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


@dataclass
class Row:
    """One customer's outcome: the record, or why its line(s) failed."""

    lines: list[int]
    record: CustomerRecord | None = None
    error: str | None = None
    #: For CSV: a new customer must be named (guards against a mistyped customer_id).
    named: bool = True


class HeaderError(ValueError):
    """The CSV header cannot be read; nothing in the file can be imported."""


def read_jsonl(path: Path) -> Iterator[Row]:
    """One customer per line; a customer listed twice in one file fails the second time."""
    seen: dict[tuple[str, str], int] = {}
    with path.open(encoding="utf-8") as source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                record = CustomerRecord.model_validate(json.loads(line))
            except json.JSONDecodeError as exc:
                yield Row([number], error=f"not valid JSON: {exc}")
                continue
            except ValidationError as exc:
                yield Row([number], error=describe_validation_error(exc))
                continue
            key = (record.org_id, record.customer_id)
            if key in seen:
                yield Row([number], error=f"duplicate customer {key[0]}/{key[1]} (first on line {seen[key]})")
                continue
            seen[key] = number
            yield Row([number], record=record)


def _flag(value: str, column: str) -> bool | None:
    text = value.strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{column}: {value!r} is not true or false")


def _customer(rows: list[tuple[int, dict[str, str]]]) -> tuple[dict[str, Any], bool]:
    first = rows[0][1]
    contacts: dict[str, dict[str, Any]] = {}
    addresses: set[tuple[str, str]] = set()
    for number, row in rows:
        cid = row["contact_id"].strip()
        fields = {
            "contact_id": cid,
            "primary": _flag(row.get("primary", ""), "primary") or False,
            "name": row.get("name", "").strip(),
            "mobile": row.get("mobile", "").strip() or None,
            "sms_enabled": _flag(row.get("sms_enabled", ""), "sms_enabled"),
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
                if (flag := _flag(row.get(c, ""), c)) is not None
            }
            notify = _flag(row.get("email_notify", ""), "email_notify")
            contact["emails"].append(
                {"address": address, "notify": True if notify is None else notify, "categories": categories}
            )
    sms = _flag(first.get("customer_sms_enabled", ""), "customer_sms_enabled")
    name = first.get("customer_name", "").strip()
    record = {
        "org_id": first["org_id"].strip(),
        "customer_id": first["customer_id"].strip(),
        "name": name,
        "sms_enabled": True if sms is None else sms,
        "contacts": list(contacts.values()),
    }
    return record, bool(name)


def read_csv(path: Path) -> Iterator[Row]:
    """Rows grouped by customer; raises ``HeaderError`` for an unusable header."""
    with path.open(encoding="utf-8", newline="") as source:
        reader = csv.DictReader(source)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in CSV_REQUIRED if c not in header]
        unknown = [c for c in header if c not in CSV_COLUMNS]
        if missing or unknown:
            problems = []
            if missing:
                problems.append(f"missing column(s) {', '.join(missing)}")
            if unknown:
                problems.append(f"unknown column(s) {', '.join(unknown)}")
            raise HeaderError(f"bad CSV header: {'; '.join(problems)} (columns: {', '.join(CSV_COLUMNS)})")
        reader.fieldnames = header
        groups: dict[tuple[str, str], list[tuple[int, dict[str, str]]]] = {}
        for row in reader:
            number = reader.line_num
            if None in row:  # more cells than the header has
                yield Row([number], error=f"{len(row[None])} cell(s) beyond the header")
                continue
            key = ((row.get("org_id") or "").strip(), (row.get("customer_id") or "").strip())
            groups.setdefault(key, []).append((number, {k: v or "" for k, v in row.items()}))
    for rows in groups.values():
        lines = [n for n, _ in rows]
        try:
            data, named = _customer(rows)
            yield Row(lines, record=CustomerRecord.model_validate(data), named=named)
        except ValidationError as exc:
            yield Row(lines, error=describe_validation_error(exc))
        except ValueError as exc:
            yield Row(lines, error=str(exc))


def read_directory(path: Path) -> Iterator[Row]:
    """JSON Lines unless the file name ends in ``.csv``."""
    return read_csv(path) if path.suffix.lower() == ".csv" else read_jsonl(path)
