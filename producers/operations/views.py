"""Masked views of history and contacts: numbers and addresses hidden unless revealed."""

from __future__ import annotations

from typing import Any

from infra.masking import mask_recipient


def mask_history(history: dict[str, Any]) -> dict[str, Any]:
    """An invoice's or contact's history with every recipient masked (in place, returned)."""
    for item in history["notifications"] + history["timeline"]:
        if item.get("recipient"):
            item["recipient"] = mask_recipient(item["recipient"])
    return history


def mask_contact(details: dict[str, Any]) -> dict[str, Any]:
    """``contact_details`` with the mobile, the addresses and the activity's recipients masked."""
    details["mobile"] = mask_recipient(details["mobile"])
    for item in details["emails"] + details["activity"]:
        key = "address" if "address" in item else "recipient"
        item[key] = mask_recipient(item[key])
    return details
