"""Quiet hours on the hot path: route's one call (``hold_outside_windows``) keeps back, in the
store, the notifications decided outside their recipient's send window; the scheduler releases
them (``producers.held_release``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from infra.store.held import hold, hold_candidates, unreleased
from workers.rules.quiet_hours import hold_until, parse_default_windows


def hold_outside_windows(
    conn: Connection, pending: Sequence[str], now: datetime, default_zone: str, default_windows: str
) -> list[str]:
    """Of ``pending`` (in order), the ids that may go to render now. The others are held until
    their window opens (stored in the caller's transaction); one held before and not yet released
    stays held, one released goes (a redelivered event never holds it twice). The organisation's
    windows apply over ``default_windows`` (``HERALD_DEFAULT_SEND_WINDOWS``)."""
    if not pending:
        return []
    found = hold_candidates(conn, pending)
    defaults = parse_default_windows(default_windows)
    waiting = unreleased(conn, [n for n in pending if n in found and found[n].held])
    go: list[str] = []
    held: list[tuple[str, str, datetime]] = []
    for nid in pending:
        c = found.get(nid)
        if c is None or (c.held and nid not in waiting):
            go.append(nid)
            continue
        if nid in waiting:
            continue
        until = hold_until(
            now,
            channel=c.channel,
            kind=c.kind,
            windows={**defaults, **c.send_windows},
            contact_zone=c.contact_timezone,
            e164=c.contact_e164,
            org_zone=c.org_timezone or default_zone,
        )
        if until is None:
            go.append(nid)
        else:
            held.append((nid, c.org_id, until))
    hold(conn, held, now)
    return go
