"""SMS keywords in the store: who texted us, and their opt-out or opt-in, through the trail."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infra.store.consent import apply_consent
from infra.store.organisations import load_orgs
from infra.store.tables import contacts
from schemas.toggles import Change


def contacts_texting(
    conn: Connection, mobile: str, to_number: str, *, default_from: str | None, default_region: str
) -> list[tuple[str, str, bool]]:
    """``(org id, contact id, opted out)`` of every contact with this mobile (E.164) whose
    organisation texts from ``to_number`` (its own number, or the default one): a keyword sent to
    a number applies to every organisation sending from it, as the carrier's block does."""
    rows = conn.execute(
        select(contacts.c.org_id, contacts.c.contact_id, contacts.c.sms_opted_out)
        .where(contacts.c.mobile_e164 == mobile)
        .order_by(contacts.c.org_id, contacts.c.contact_id)
    ).all()
    if not rows:
        return []
    orgs = load_orgs(conn, [r.org_id for r in rows], default_region)
    return [
        (r.org_id, r.contact_id, bool(r.sms_opted_out))
        for r in rows
        if (orgs[r.org_id].sender_number or default_from) == to_number
    ]


def set_opted_out(
    conn: Connection, found: list[tuple[str, str, bool]], opted_out: bool, *, actor: str, detail: str
) -> int:
    """Opt each found contact out (or back in) of SMS, through the consent trail; how many moved."""
    moved = 0
    for org_id, contact_id, current in found:
        moved += len(
            apply_consent(
                conn,
                org_id,
                contact_id,
                [Change("sms_opted_out", current, opted_out)],
                source="sms_keyword",
                actor=actor,
                detail=detail,
            )
        )
    return moved
