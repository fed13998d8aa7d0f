"""An organisation's SMS providers, in order (``herald orgs set --sms-providers``), each with its
own sender and rate limit; stored as JSON in ``organisations.sms_providers``."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The SMS providers herald has adapters for.
KNOWN_SMS_PROVIDERS: tuple[str, ...] = ("twilio", "vonage")
#: A provider name as the store keeps it (tests register other gateways under such names).
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,19}$")
#: An E.164 number or an alphanumeric sender name (1-11 letters, digits or spaces).
_SENDER = re.compile(r"^(\+[1-9][0-9]{6,14}|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11})$")
MAX_PROVIDERS = 5
MAX_RATE = 10_000.0


@dataclass(frozen=True)
class SmsProvider:
    """One provider of an organisation's list: its name, and its own sender and rate (segments
    per second) when set (None: the deployment's)."""

    name: str
    sender: str | None = None
    rate: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"name": self.name, "sender": self.sender, "rate": self.rate}


def check_name(name: str, known: Sequence[str] = KNOWN_SMS_PROVIDERS) -> str:
    """A provider name, or ``ValueError`` naming the problem."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"sms provider {str(name)[:40]!r}: a lower-case name such as twilio")
    if name not in known:
        raise ValueError(f"sms provider {name!r}: expected one of {', '.join(known)}")
    return name


def check_sender(sender: str) -> str:
    """A sender: an E.164 number or an alphanumeric name; else ``ValueError``."""
    if not isinstance(sender, str) or not _SENDER.fullmatch(sender):
        raise ValueError(
            f"sender {str(sender)[:40]!r}: an E.164 number (+358401234567) or 1-11 letters, digits or spaces"
        )
    return sender


def check_rate(rate: float) -> float:
    """A rate in segments per second (0: not limited); else ``ValueError``."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise ValueError(f"rate {str(rate)[:40]!r}: a number of segments per second")
    if not 0 <= rate <= MAX_RATE:
        raise ValueError(f"rate {rate!r}: between 0 and {MAX_RATE:g} segments per second")
    return float(rate)


def parse_stored(value: Any) -> tuple[SmsProvider, ...]:
    """The stored list (NULL or anything unreadable: none, i.e. the default)."""
    if not isinstance(value, list):
        return ()
    providers: list[SmsProvider] = []
    for entry in value[:MAX_PROVIDERS]:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str) and _NAME.fullmatch(entry["name"]):
            sender = entry.get("sender") if isinstance(entry.get("sender"), str) else None
            rate = entry.get("rate")
            rate = float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else None
            providers.append(SmsProvider(entry["name"], sender, rate))
    return tuple(providers)


def changed_list(
    current: Sequence[SmsProvider],
    *,
    order: Sequence[str] | None = None,
    senders: dict[str, str] | None = None,
    rates: dict[str, float] | None = None,
    known: Sequence[str] = KNOWN_SMS_PROVIDERS,
) -> tuple[SmsProvider, ...]:
    """The list after a change: a new ``order`` (each provider keeps its sender and rate), and
    senders or rates per provider ('' clears a sender, a rate < 0 is refused). ``ValueError``
    names what is wrong. A provider given a sender or rate must be in the list."""
    by_name = {p.name: p for p in current} or {"twilio": SmsProvider("twilio")}
    names = [p.name for p in current] or ["twilio"]
    if order is not None:
        names = [check_name(n.strip(), known) for n in order]
        if not names:
            raise ValueError("--sms-providers: at least one provider")
        if len(set(names)) != len(names):
            raise ValueError(f"--sms-providers {','.join(names)[:80]}: a provider is listed twice")
        if len(names) > MAX_PROVIDERS:
            raise ValueError(f"--sms-providers: at most {MAX_PROVIDERS} providers")
    made = {n: by_name.get(n, SmsProvider(n)) for n in names}
    for name, sender in (senders or {}).items():
        if name not in made:
            raise ValueError(f"--provider-sender {name}=…: {name!r} is not in the list ({','.join(names)})")
        p = made[name]
        made[name] = SmsProvider(name, check_sender(sender) if sender else None, p.rate)
    for name, rate in (rates or {}).items():
        if name not in made:
            raise ValueError(f"--provider-rate {name}=…: {name!r} is not in the list ({','.join(names)})")
        p = made[name]
        made[name] = SmsProvider(name, p.sender, check_rate(rate))
    return tuple(made[n] for n in names)
