"""Contacts, customers and toggles: the ``herald contacts`` operations over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra.store.api_keys import ApiKey
from infra.store.toggles import contact_details
from producers.api.auth import ApiContext, context, needs, revealed
from producers.api.errors import ApiError, validation_details
from producers.operations.directory import change_toggles, import_customer
from producers.operations.views import mask_contact
from schemas.access import Capability
from schemas.directory import CustomerRecord
from schemas.toggles import Action, ToggleRequest

router = APIRouter(tags=["contacts"])


class Toggles(BaseModel):
    """What to do with each toggle: keep (the default), enable or disable."""

    model_config = ConfigDict(extra="forbid")

    sms: Action = Action.KEEP
    notify: Action = Action.KEEP
    new_invoice: Action = Action.KEEP
    pending_reminders: Action = Action.KEEP
    payment_confirmation: Action = Action.KEEP
    refunds: Action = Action.KEEP

    def request(self) -> ToggleRequest:
        """As the rule (``schemas.toggles.plan``) takes it."""
        categories = {
            c: getattr(self, c)
            for c in ("new_invoice", "pending_reminders", "payment_confirmation", "refunds")
        }
        return ToggleRequest(sms=self.sms, notify=self.notify, categories=categories)


class BulkToggles(Toggles):
    """Which contacts (exactly one of ``contacts``, ``customer_id``, ``all``) and what to do."""

    contacts: list[str] | None = Field(None, max_length=10_000)
    customer_id: str | None = None
    all: bool = False
    dry_run: bool = False


@router.get("/contacts/{contact_id}")
def get_contact(
    contact_id: str,
    reveal: bool = Query(False, description="Full numbers and addresses (admin keys only)."),
    key: ApiKey = needs(Capability.VIEW),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """A contact's toggles, customers and recent activity (masked unless revealed), as
    ``herald contacts show``."""
    with ctx.services.reading() as conn:
        details = contact_details(conn, key.org_id, contact_id)
    if details is None:
        raise ApiError(404, "not_found", f"no contact {contact_id}")
    return details if revealed(key, reveal) else mask_contact(details)


@router.put("/customers/{customer_id}")
def put_customer(
    customer_id: str,
    body: dict[str, Any] = Body(
        ...,
        examples=[
            {
                "name": "Acme Oy",
                "contacts": [{"contact_id": "P1", "primary": True, "mobile": "+358401234567"}],
            }
        ],
    ),
    key: ApiKey = needs(Capability.EDIT),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """Import one customer whole (a line of ``herald contacts import``; ``org_id`` and
    ``customer_id`` come from the key and the path): created, updated or unchanged, with warnings."""
    for field, expected in (("org_id", key.org_id), ("customer_id", customer_id)):
        if field in body and body[field] != expected:
            raise ApiError(
                422,
                "invalid_request",
                f"{field}: {body[field]!r} does not match {expected!r}",
                [{"field": f"body.{field}"}],
            )
    try:
        record = CustomerRecord.model_validate({**body, "org_id": key.org_id, "customer_id": customer_id})
    except ValidationError as exc:
        details = validation_details(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        )
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        raise ApiError(422, "invalid_request", f"invalid customer: {summary}", details) from None
    result = import_customer(ctx.services, record)
    return {"customer_id": customer_id, "result": result.outcome, "warnings": result.warnings}


@router.put("/contacts/{contact_id}/toggles")
def put_toggles(
    contact_id: str,
    body: Toggles,
    dry_run: bool = Query(False, description="Report what would change; write nothing."),
    key: ApiKey = needs(Capability.EDIT),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """Change one contact's toggles; what changed (or would, with ``dry_run``)."""
    (row,) = change_toggles(ctx.services, key.org_id, body.request(), ids=[contact_id], dry_run=dry_run)
    if row["result"] == "failed":
        raise ApiError(404, "not_found", f"no contact {contact_id}")
    return {"dry_run": dry_run, **row}


@router.post("/toggles/bulk")
def bulk_toggles(
    body: BulkToggles, key: ApiKey = needs(Capability.EDIT), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Change toggles for many contacts; a row per contact: changed, unchanged or failed with
    its reason (as ``herald contacts toggles --json``)."""
    chosen = (body.contacts is not None) + (body.customer_id is not None) + body.all
    if chosen != 1:
        raise ApiError(422, "invalid_request", "give exactly one of contacts, customer_id, all")
    report = change_toggles(
        ctx.services,
        key.org_id,
        body.request(),
        ids=body.contacts,
        customer_id=body.customer_id,
        dry_run=body.dry_run,
    )
    counts = {r: sum(row["result"] == r for row in report) for r in ("changed", "unchanged", "failed")}
    return {"dry_run": body.dry_run, "contacts": report, **counts}
