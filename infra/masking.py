"""Masking of personal data for logs and default output.

Phone numbers keep their country code and last two digits; email addresses
keep their first character and domain. URLs lose their passwords.

Only phone numbers and email addresses are masked. A log line is full of other digit runs
(timestamps, dates, ids, amounts, UUIDs, durations, addresses and ports) and masking them
would make the line useless without protecting anyone, so a digit run counts as a phone number
only when it is written as one: ``+`` (or ``%2B``) and 7-15 digits, or a national number with
its trunk ``0`` or an area code in parentheses, or any value of a ``mobile``/``phone``/``msisdn``
field. herald itself stores and logs E.164 numbers.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# An address starts where a run of local-part characters starts: without the lookbehind, a long
# run with no "@" was tried again from each of its characters (quadratic: minutes for 50 kB).
# The domain's labels are matched one by one, so no two repeats compete for the same dots.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})"
)

# Tokens that look like digit runs but are not numbers: tried first at each position, so no phone
# number is looked for inside one. ISO 8601 datetimes, dates and times (with fractions and offsets,
# as ``datetime.isoformat`` writes them), day-month-year dates, UUIDs.
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2}(?::\d{2}(?:\.\d+)?)?)"
_TIME = rf"\d{{2}}:\d{{2}}(?::\d{{2}}(?:[.,]\d+)?)?{_OFFSET}?"
_ISO = rf"\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]{_TIME})?"
_DMY = r"\d{1,2}[./-]\d{1,2}[./-]\d{4}"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# After the last digit of a number: not a word character (``ntf_13cf…`` is an id), and not a
# separator followed by a digit (the number would then be the head of a date, time or amount).
_END = r"(?!\w|[\-.:/]\d)"
# Each further digit may follow up to two separators ("+1 (555) 010-0100"): counting digits, not
# characters, keeps a number from running on into the next one (E.164 has at most 15 digits).
_INTERNATIONAL = rf"(?<!\w)(?:\+|%2[bB])\d(?:[ .\-()]{{0,2}}\d){{6,14}}{_END}"
# National: the trunk 0 ("040 123 4567", "0044…") or an area code in parentheses ("(555) 010-0100").
# Not after a dot, hyphen or word character: the tail of a decimal, UUID or id is no number.
_NATIONAL = rf"(?<![\w.\-+])(?:0\d|\(\d{{1,4}}\)[ \-]?\d)(?:[ \-()]{{0,2}}\d){{5,13}}{_END}"
_PHONE = re.compile(rf"(?P<keep>{_ISO}|{_DMY}|{_TIME}|{_UUID})|(?P<number>{_INTERNATIONAL}|{_NATIONAL})")
# A value under a field named as a phone number is one, however bare ("401234567" is no number by
# its shape): in JSON (a dead-lettered body, an import row) and in a form or query string.
_PHONE_FIELD = r"(?:mobile|phone|msisdn)[a-z0-9_]*"
_FIELD = re.compile(
    rf'(?P<json>"{_PHONE_FIELD}"\s*:\s*")(?P<quoted>[^"\\]{{1,64}})(?=")'
    rf'|(?<!\w)(?P<form>{_PHONE_FIELD}=)(?P<plain>[^&\s"]{{1,64}})',
    re.IGNORECASE,
)


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


def _masked_number(match: re.Match[str]) -> str:
    text = match.group(0)
    if match.group("keep"):
        return text
    if text[:1] == "%":  # URL-encoded "+" (a query string, a form body): keep the encoding
        return text[:3] + mask_phone("+" + text[3:])[1:]
    return mask_phone(text)


def _masked_field(match: re.Match[str]) -> str:
    key, value = (
        (match.group("json"), match.group("quoted")) if match.group("json") else match.group("form", "plain")
    )
    if sum(c.isdigit() for c in value) < 5:  # "n/a", "": nothing of a number to hide
        return match.group(0)
    return key + mask_phone(value.replace("%2B", "+").replace("%2b", "+"))


#: A signed preference link's token in a path (``infra.link_tokens``): a bearer credential.
_LINK_TOKEN = re.compile(r"(/preferences/[^/\s\"']+/)[A-Za-z0-9_-]{1,16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def mask_text(text: str) -> str:
    """Mask every email address and phone number in free text (URL-encoded ones too, and any
    value of a ``mobile``/``phone`` field), and the token of every preference link; leave
    timestamps, dates, ids, amounts, UUIDs and durations as they are."""
    if "/preferences/" in text:
        text = _LINK_TOKEN.sub(r"\1***", text)
    text = _FIELD.sub(_masked_field, text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***{m.group(2)}{m.group(3)}", text)
    return _PHONE.sub(_masked_number, text)


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
