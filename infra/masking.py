"""Masking of personal data for logs and default output.

Phone numbers keep their country code and last two digits; email addresses
keep their first character and domain. URLs lose their passwords.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# A run of 7+ digits, optionally with a leading + and separators, is treated as a phone number,
# unless it is part of a longer word: ids such as ``ntf_13cf632…`` or ``SM96e5…`` are not numbers.
_PHONE = re.compile(r"(?<![\w])\+?\d[\d \-().]{5,}\d(?![\w])")


def mask_phone(number: str | None) -> str:
    """``+358401234567`` → ``+358*******67``."""
    if not number:
        return ""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 3 if number.startswith("+") else 0
    head = ("+" + digits[:keep_head]) if keep_head else ""
    return head + "*" * (len(digits) - keep_head - 2) + digits[-2:]


def mask_email(address: str | None) -> str:
    """``aino@example.fi`` → ``a***@example.fi``."""
    if not address:
        return ""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_recipient(recipient: str | None) -> str:
    """Mask a phone number or an email address, whichever it is."""
    if recipient and "@" in recipient:
        return mask_email(recipient)
    return mask_phone(recipient)


def mask_text(text: str) -> str:
    """Mask every email address and phone-number-like run in free text."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def redact_url(url: str) -> str:
    """Drop the password from a URL: ``amqp://guest:***@host/``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
