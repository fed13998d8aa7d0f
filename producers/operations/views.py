"""Masked views of history and contacts: numbers and addresses hidden unless revealed."""

from __future__ import annotations

from typing import Any

from infra.masking import mask_recipient


def mask_history(history: dict[str, Any]) -> dict[str, Any]:
    """An invoice's or contact's history with every recipient masked (in place, returned)."""
    for item in history["notifications"] + history["timeline"]:
        if item.get("recipient"):
            item["recipient"] = mask_recipient(item["recipient"])
        if item.get("consent"):
            item["consent"] = mask_consent_row(item["consent"])
    return history


def mask_consent_row(row: dict[str, Any]) -> dict[str, Any]:
    """A consent trail row with the address in its toggle's name masked (a copy)."""
    head, sep, toggle = row["toggle"].rpartition(" ")
    if sep and "@" in head:
        return {**row, "toggle": f"{mask_recipient(head)} {toggle}"}
    return dict(row)


def mask_consent(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``consent_trail`` with every address masked."""
    return [mask_consent_row(r) for r in rows]


def mask_contact(details: dict[str, Any]) -> dict[str, Any]:
    """``contact_details`` with the mobile, the addresses and the activity's recipients masked."""
    details["mobile"] = mask_recipient(details["mobile"])
    for item in details["emails"] + details["activity"]:
        key = "address" if "address" in item else "recipient"
        item[key] = mask_recipient(item[key])
    return details
