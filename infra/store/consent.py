"""The consent trail: the one way a contact's toggles change, and the append-only record of it.

Every source (the preference page, one-click unsubscribe, an SMS keyword, Twilio's 21610, an
operator through the CLI or the API, a bulk change, the directory import, a hard bounce) changes
toggles through ``apply_consent``, which writes the new value and a ``consent_changes`` row in
the caller's transaction: so a toggle never moves without its row, and a row never stands for a
change that was rolled back. Rows are only ever inserted.

A toggle is named as ``schemas.toggles.Change.what`` names it: ``sms``, ``sms_opted_out``,
``customer <customer id> sms``, ``<address> notify``, ``<address> <category>``,
``<address> suppressed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from infra.store.tables import consent_changes, contact_emails, contacts, customer_contacts
from schemas.directory import is_directory_id
from schemas.toggles import EMAIL_CATEGORIES, Change

Source = Literal[
    "preference_page", "one_click", "sms_keyword", "twilio_21610", "operator", "bulk", "import", "bounce"
]
SOURCES: tuple[str, ...] = (
    "preference_page",
    "one_click",
    "sms_keyword",
    "twilio_21610",
    "operator",
    "bulk",
    "import",
    "bounce",
)
#: Longest detail kept on a row (the column's size).
_DETAIL = 500


def _write(
    conn: Connection, org_id: str, contact_id: str, change: Change, detail: str | None, now: datetime
) -> None:
    what = change.what
    if what in ("sms", "sms_opted_out"):
        column = "sms_enabled" if what == "sms" else "sms_opted_out"
        conn.execute(
            update(contacts)
            .where(contacts.c.org_id == org_id, contacts.c.contact_id == contact_id)
            .values({column: change.new, "updated_at": now})
        )
        return
    head, _, toggle = what.rpartition(" ")
    if what.startswith("customer ") and toggle == "sms":
        conn.execute(
            update(customer_contacts)
            .where(
                customer_contacts.c.org_id == org_id,
                customer_contacts.c.customer_id == head.removeprefix("customer "),
                customer_contacts.c.contact_id == contact_id,
            )
            .values(sms_enabled=change.new)
        )
        return
    where = (
        contact_emails.c.org_id == org_id,
        contact_emails.c.contact_id == contact_id,
        contact_emails.c.address == head,
    )
    if toggle == "notify":
        conn.execute(update(contact_emails).where(*where).values(notify=change.new))
    elif toggle == "suppressed":
        conn.execute(
            update(contact_emails)
            .where(*where)
            .values(
                suppressed_reason=(detail or "suppressed")[:_DETAIL] if change.new else None,
                suppressed_at=now if change.new else None,
            )
        )
    elif toggle in EMAIL_CATEGORIES:
        current = conn.execute(select(contact_emails.c.categories).where(*where)).scalar()
        categories = {c: bool((current or {}).get(c, True)) for c in EMAIL_CATEGORIES}
        categories[toggle] = change.new
        conn.execute(update(contact_emails).where(*where).values(categories=categories))
    else:
        raise ValueError(f"no such toggle: {what!r}")


def record_trail(
    conn: Connection,
    org_id: str,
    contact_id: str,
    changes: Sequence[Change],
    *,
    source: Source,
    actor: str,
    detail: str | None = None,
    now: datetime | None = None,
) -> None:
    """Append a row per change, for changes already written (the directory import writes the
    whole record; ``apply_consent`` for everything else)."""
    if not changes:
        return
    at = now or datetime.now(UTC)
    conn.execute(
        consent_changes.insert(),
        [
            {
                "org_id": org_id,
                "contact_id": contact_id,
                "toggle": c.what[:400],
                "old": c.old,
                "new": c.new,
                "source": source,
                "actor": actor[:200],
                "detail": detail[:_DETAIL] if detail else None,
                "at": at,
            }
            for c in changes
        ],
    )


def apply_consent(
    conn: Connection,
    org_id: str,
    contact_id: str,
    changes: Sequence[Change],
    *,
    source: Source,
    actor: str,
    detail: str | None = None,
) -> list[Change]:
    """Write each change that moves something and its row in the trail; the changes written.

    A change whose old and new value are the same is dropped (nothing moved, nothing recorded).
    """
    moving = [c for c in changes if c.old != c.new]
    now = datetime.now(UTC)
    for change in moving:
        _write(conn, org_id, contact_id, change, detail, now)
    record_trail(conn, org_id, contact_id, moving, source=source, actor=actor, detail=detail, now=now)
    return moving


def _iso(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": _iso(r.at),
        "toggle": r.toggle,
        "old": r.old,
        "new": r.new,
        "source": r.source,
        "actor": r.actor,
        "detail": r.detail,
    }


def consent_trail(conn: Connection, org_id: str, contact_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """A contact's trail, oldest first (the last ``limit`` rows)."""
    if not is_directory_id(contact_id):
        return []
    rows = conn.execute(
        select(consent_changes)
        .where(consent_changes.c.org_id == org_id, consent_changes.c.contact_id == contact_id)
        .order_by(consent_changes.c.id.desc())
        .limit(limit)
    ).all()
    return [_row(r) for r in reversed(rows)]


def cause_of(
    conn: Connection, org_id: str, contact_id: str, toggles: Sequence[str], at: datetime
) -> dict[str, Any] | None:
    """The last trail row that switched one of ``toggles`` off (or opted out, or suppressed) at or
    before ``at``: why a notification made then was skipped; ``None`` when the trail has none (the
    toggle was off from the import, or before the trail existed)."""
    if not toggles:
        return None
    row = conn.execute(
        select(consent_changes)
        .where(
            consent_changes.c.org_id == org_id,
            consent_changes.c.contact_id == contact_id,
            consent_changes.c.toggle.in_(list(toggles)),
            consent_changes.c.at <= at,
        )
        .order_by(consent_changes.c.id.desc())
        .limit(1)
    ).first()
    return _row(row) if row is not None else None
