"""Email suppression: an address that hard-bounced gets no email until an operator lifts it.

Suppressing and lifting go through the consent trail (``<address> suppressed``), for every contact
of the organisation that has the address.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infra.store.consent import Source, apply_consent
from infra.store.tables import contact_emails
from schemas.toggles import Change


def _holders(conn: Connection, org_id: str, address: str) -> Sequence[Any]:
    return conn.execute(
        select(contact_emails.c.contact_id, contact_emails.c.suppressed_reason).where(
            contact_emails.c.org_id == org_id, contact_emails.c.address == address.lower()
        )
    ).all()


def suppress_address(conn: Connection, org_id: str, address: str, reason: str, *, actor: str) -> int:
    """Suppress ``address`` for email in ``org_id`` (a hard bounce, with its reason); how many
    contacts' rows were newly suppressed."""
    count = 0
    for row in _holders(conn, org_id, address):
        if row.suppressed_reason is None:
            change = Change(f"{address.lower()} suppressed", False, True)
            apply_consent(conn, org_id, row.contact_id, [change], source="bounce", actor=actor, detail=reason)
            count += 1
    return count


def lift_suppression(
    conn: Connection, org_id: str, address: str, *, actor: str, source: Source = "operator"
) -> int:
    """Email ``address`` again; how many contacts' rows were suppressed (0: it was not)."""
    count = 0
    for row in _holders(conn, org_id, address):
        if row.suppressed_reason is not None:
            change = Change(f"{address.lower()} suppressed", True, False)
            apply_consent(
                conn,
                org_id,
                row.contact_id,
                [change],
                source=source,
                actor=actor,
                detail="suppression lifted",
            )
            count += 1
    return count


def list_suppressions(conn: Connection, org_id: str) -> list[dict[str, Any]]:
    """The organisation's suppressed addresses, with the contact, the reason and since when."""
    rows = conn.execute(
        select(contact_emails)
        .where(contact_emails.c.org_id == org_id, contact_emails.c.suppressed_reason.is_not(None))
        .order_by(contact_emails.c.address, contact_emails.c.contact_id)
    ).all()
    return [
        {
            "address": r.address,
            "contact_id": r.contact_id,
            "reason": r.suppressed_reason,
            "since": r.suppressed_at.isoformat() if r.suppressed_at else None,
        }
        for r in rows
    ]
