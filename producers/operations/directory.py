"""Directory operations: import one customer, change toggles (one contact or many)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.consent import Source, record_trail
from infra.store.directory import UpsertOutcome, upsert_customer
from infra.store.organisations import load_org
from infra.store.tables import customers
from infra.store.toggles import apply_changes, load_toggles, select_contacts
from schemas.directory import CustomerRecord
from schemas.phones import extension, to_e164
from schemas.toggles import Change, ToggleRequest, account_sms_toggle
from workers.rules.toggles import plan, toggle_diff


@dataclass
class ImportResult:
    """One customer's import: ``outcome`` (None when refused, with ``error``) and warnings."""

    outcome: UpsertOutcome | None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: A refusal's problems as (field path in the record, message), when they are fields'.
    problems: list[tuple[str, str]] = field(default_factory=list)


def phone_problems(record: CustomerRecord, region: str) -> list[tuple[str, str]]:
    """(field path, message) for each mobile with an extension: SMS cannot dial one, and
    storing the number without it would store another number than the one given."""
    return [
        (
            f"contacts[{i}].mobile",
            f"{c.mobile!r} has an extension ({ext}); SMS cannot dial an extension:"
            " give the mobile number alone",
        )
        for i, c in enumerate(record.contacts)
        if (ext := extension(c.mobile, region))
    ]


def phone_warnings(record: CustomerRecord, region: str) -> list[str]:
    """A warning for each contact whose mobile does not parse in ``region`` (stored anyway)."""
    return [
        f"contact {c.contact_id}: mobile {c.mobile!r} is not a valid number in region {region};"
        " SMS to it will be skipped as invalid_phone"
        for c in record.contacts
        if c.mobile and to_e164(c.mobile, region) is None
    ]


def import_customer(
    svc: Services, record: CustomerRecord, *, named: bool = True, actor: str = "cli"
) -> ImportResult:
    """Upsert one customer whole, in one transaction.

    Toggles the import changes on contacts already known go in the consent trail (``import``, by
    ``actor``); a new contact's or a new address's first values are the record itself.

    ``named`` is False for a CSV row without ``customer_name``: such a row may update a known
    customer but not create one, so a mistyped id is refused rather than created.
    """
    with svc.transaction() as conn:
        known = conn.execute(
            select(customers.c.customer_id, customers.c.sms_enabled).where(
                customers.c.org_id == record.org_id, customers.c.customer_id == record.customer_id
            )
        ).first()
        if known is None and not named:
            return ImportResult(
                None,
                error=f"unknown customer {record.org_id}/{record.customer_id}"
                " (a new customer needs customer_name)",
            )
        region = load_org(conn, record.org_id, svc.settings.default_region).region
        problems = phone_problems(record, region)
        if problems:
            return ImportResult(
                None, error="; ".join(f"{path}: {message}" for path, message in problems), problems=problems
            )
        before = {c.contact_id: load_toggles(conn, record.org_id, c.contact_id) for c in record.contacts}
        outcome = upsert_customer(conn, record, region=region)
        for contact_id, old in before.items():
            new = load_toggles(conn, record.org_id, contact_id)
            if old is not None and new is not None:
                record_trail(
                    conn, record.org_id, contact_id, toggle_diff(old, new), source="import", actor=actor
                )
        if known is not None and bool(known.sms_enabled) != record.sms_enabled:
            # The account's own SMS switch (the upstream's customer record): in the trail of each of
            # its contacts, so a ``customer_sms_off`` skip shows the change behind it.
            change = Change(
                account_sms_toggle(record.customer_id), bool(known.sms_enabled), record.sms_enabled
            )
            for contact in record.contacts:
                record_trail(conn, record.org_id, contact.contact_id, [change], source="import", actor=actor)
    return ImportResult(outcome, warnings=phone_warnings(record, region))


def change_toggles(
    svc: Services,
    org_id: str,
    request: ToggleRequest,
    *,
    ids: list[str] | None = None,
    customer_id: str | None = None,
    dry_run: bool = False,
    actor: str = "cli",
) -> list[dict[str, Any]]:
    """Apply ``request`` to the listed contacts, a customer's, or all of the organisation's.

    One row per contact: ``changed`` / ``unchanged`` with the changes, or ``failed`` with the
    reason; ``dry_run`` plans without writing. Each change is in the consent trail, from
    ``operator`` (one listed contact) or ``bulk`` (several, a customer's, all), by ``actor``.
    """
    source: Source = "operator" if ids is not None and len(ids) == 1 else "bulk"
    report: list[dict[str, Any]] = []
    with svc.transaction() as conn:
        for contact_id in select_contacts(conn, org_id, ids=ids, customer_id=customer_id):
            current = load_toggles(conn, org_id, contact_id)
            if current is None:
                report.append({"contact_id": contact_id, "result": "failed", "reason": "unknown contact"})
                continue
            changes = plan(current, request)
            if changes and not dry_run:
                apply_changes(conn, org_id, contact_id, changes, source=source, actor=actor)
            report.append(
                {
                    "contact_id": contact_id,
                    "result": "changed" if changes else "unchanged",
                    "changes": [str(c) for c in changes],
                }
            )
    return report
