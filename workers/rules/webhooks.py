"""Outward webhooks: pure rules for endpoints (URL, event filter) and for delivery (when to retry,
when to give up, when to pause an endpoint, in which order)."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from infra.errors import Invalid
from schemas.status_events import StatusEventType, wants

__all__ = ["wants"]

MAX_URL_CHARS = 2000
#: Hosts plain ``http://`` is allowed to (tests, a receiver on the same host).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def check_url(url: str) -> str:
    """The endpoint URL as given, or ``Invalid`` naming what is wrong: ``https://`` (plain
    ``http://`` only to a loopback host), a host, no user or password in it, no whitespace or
    control characters, at most 2,000 characters."""
    if not isinstance(url, str) or not url:
        raise Invalid("url: give the endpoint's URL, e.g. https://billing.example.com/herald")
    if len(url) > MAX_URL_CHARS:
        raise Invalid(f"url: {len(url)} characters; at most {MAX_URL_CHARS}")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise Invalid("url: contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise Invalid(f"url: not a URL ({exc})") from None
    if parts.scheme not in ("https", "http"):
        raise Invalid(f"url: scheme {parts.scheme[:20]!r}; webhooks go to https:// URLs")
    if not parts.hostname:
        raise Invalid("url: no host")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url: must not carry a user or password (the signature authenticates herald)")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise Invalid("url: plain http:// is only allowed to a loopback host; use https://")
    del port
    return url


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_event_types(types: Iterable[str] | None) -> list[str] | None:
    """The filter as stored (sorted, each once), ``None`` for every type; ``Invalid`` naming an
    unknown type and listing the known ones."""
    if types is None:
        return None
    given = list(types)
    if not given:
        return None
    known = {t.value for t in StatusEventType}
    wrong = [t for t in given if t not in known]
    if wrong:
        shown = ", ".join(repr(t[:60]) for t in wrong[:5])
        raise Invalid(f"events: unknown type {shown}; known: {', '.join(sorted(known))}")
    return sorted(set(given))


@dataclass(frozen=True)
class RetryPolicy:
    """How deliveries are retried (from the settings)."""

    base_seconds: float = 5.0
    cap_seconds: float = 3600.0
    #: A delivery still failing this long after its first attempt is given up.
    window: timedelta = timedelta(days=3)
    #: Consecutive failed attempts (any delivery) after which an endpoint is paused.
    pause_after: int = 50


def backoff_seconds(attempt: int, policy: RetryPolicy, rand: random.Random | None = None) -> float:
    """The wait after failed attempt number ``attempt`` (1, 2, …): exponential from the base,
    capped, with jitter (half fixed, half random) so endpoints recovering together are not hit in
    step."""
    full = min(policy.cap_seconds, policy.base_seconds * 2 ** min(attempt - 1, 40))
    return full / 2 + (rand or random).uniform(0, full / 2)


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date; ``None`` when absent
    or not understood."""
    if not header:
        return None
    value = header.strip()[:100]
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def next_attempt_at(
    attempt: int,
    now: datetime,
    retry_after: float | None,
    policy: RetryPolicy,
    rand: random.Random | None = None,
) -> datetime:
    """When to try again after failed attempt ``attempt``: the backoff, or the endpoint's
    ``Retry-After`` when that is later (bounded by the retry window)."""
    wait = backoff_seconds(attempt, policy, rand)
    if retry_after is not None:
        wait = max(wait, min(retry_after, policy.window.total_seconds()))
    return now + timedelta(seconds=wait)


def gives_up(first_attempt_at: datetime | None, now: datetime, policy: RetryPolicy) -> bool:
    """Whether a failing delivery has been retried for the whole window."""
    return first_attempt_at is not None and now - first_attempt_at >= policy.window


def pauses(consecutive_failures: int, policy: RetryPolicy) -> bool:
    """Whether an endpoint failing this many attempts in a row is paused (``0``: never)."""
    return policy.pause_after > 0 and consecutive_failures >= policy.pause_after


def delivered(status_code: int | None) -> bool:
    """A 2xx answer is a delivery; anything else (3xx included: redirects are not followed) is not."""
    return status_code is not None and 200 <= status_code < 300


@dataclass(frozen=True)
class Pending:
    """A pending delivery as the order rule sees it."""

    id: int
    subject: str
    due: bool


def sendable(pending: Sequence[Pending]) -> list[int]:
    """Of an endpoint's pending deliveries in outbox order, the ids that may go now: the first of
    each subject (notification, payment, …), if it is due. A later one waits for it, so a
    ``delivered`` is never delivered before its ``sent``."""
    seen: set[str] = set()
    out: list[int] = []
    for p in pending:
        if p.subject in seen:
            continue
        seen.add(p.subject)
        if p.due:
            out.append(p.id)
    return out
