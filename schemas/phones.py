"""Phone numbers: parsed with the organisation's region, stored in E.164."""

from __future__ import annotations

import phonenumbers


def to_e164(raw: str | None, region: str) -> str | None:
    """``"040 1234567"`` in region ``FI`` → ``"+358401234567"``.

    Returns ``None`` when ``raw`` is empty or is not a valid number for any
    region (a bare national number is read in ``region``).
    """
    if raw is None or not raw.strip():
        return None
    try:
        parsed = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
