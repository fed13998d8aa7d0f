"""SMS segments: how many parts a body costs, GSM-7 or UCS-2."""

from __future__ import annotations

from dataclasses import dataclass

# The GSM 03.38 default alphabet, and the extension table whose characters take two septets.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
MAX_BODY_CHARS = 1600


@dataclass(frozen=True)
class Segments:
    """The encoding, length in that encoding's units, and parts of one SMS body."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int
    parts: int


def count_segments(body: str) -> Segments:
    """GSM-7 (160 in one part, 153 per part; extension characters count two) when every
    character is in the GSM alphabet, else UCS-2 (70, 67 per part; outside the basic
    plane counts two). Bodies over 1,600 characters are refused."""
    if len(body) > MAX_BODY_CHARS:
        raise ValueError(f"SMS body is {len(body)} characters, over the limit of {MAX_BODY_CHARS}")
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in body)
        single, per_part, encoding = 160, 153, "GSM-7"
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in body)
        single, per_part, encoding = 70, 67, "UCS-2"
    parts = 1 if units <= single else -(-units // per_part)
    return Segments(encoding, units, parts)


def credit_allows(buys_credit: bool, balance: int, parts: int) -> bool:
    """Rule 7: where the organisation buys SMS credit, a message costing more than the balance is not sent."""
    return not buys_credit or parts <= balance
