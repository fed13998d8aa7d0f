"""Phone numbers: parsed with the organisation's region, stored in E.164."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


def _parse(raw: str | None, region: str) -> phonenumbers.PhoneNumber | None:
    if raw is None or not raw.strip():
        return None
    try:
        return phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException:
        return None


def extension(raw: str | None, region: str) -> str | None:
    """The extension ``raw`` dials after the number (``"+358 40 1234567 ext 9"`` → ``"9"``), or
    ``None``. SMS cannot reach an extension, so such a number is refused, never shortened."""
    parsed = _parse(raw, region)
    return parsed.extension if parsed is not None and parsed.extension else None


@lru_cache(maxsize=8192)
def to_e164(raw: str | None, region: str) -> str | None:
    """``"040 1234567"`` in region ``FI`` → ``"+358401234567"``.

    Remembered (it is pure, and a contact's number is read again for each event about them):
    parsing a number costs more than the rest of a routing decision.

    Returns ``None`` when ``raw`` is empty, is not a valid number for any region (a bare
    national number is read in ``region``), or has an extension: E.164 has no place for one,
    and the number without it is not the number given.
    """
    parsed = _parse(raw, region)
    if parsed is None or parsed.extension or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
