"""Contacts, customers and toggles: the ``herald contacts`` operations over HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from infra.store.api_keys import ApiKey
from infra.store.toggles import contact_details
from producers.api.auth import ApiContext, context, needs, revealed
from producers.api.errors import ApiError, validation_details
from producers.imports import JsonRejected, json_type, load_json
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
        """As the rule (``workers.rules.toggles.plan``) takes it."""
        categories = {
            c: getattr(self, c)
            for c in ("new_invoice", "pending_reminders", "payment_confirmation", "refunds")
        }
        return ToggleRequest(sms=self.sms, notify=self.notify, categories=categories)


class BulkToggles(Toggles):
    """Which contacts (exactly one of ``contacts``, ``customer_id``, ``all``) and what to do."""

    contacts: list[str] | None = Field(None, max_length=10_000)
    customer_id: str | None = None
    all: StrictBool = False
    dry_run: StrictBool = False


_CUSTOMER_EXAMPLE = {
    "name": "Acme Oy",
    "contacts": [{"contact_id": "P1", "primary": True, "mobile": "+358401234567"}],
}
#: ``PUT /customers`` reads its own body (``_customer_body``), so its schema is given here.
_CUSTOMER_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A line of `herald contacts import`, without `org_id` and `customer_id`.",
                },
                "example": _CUSTOMER_EXAMPLE,
            }
        },
    }
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _invalid(summary: str, details: list[dict[str, str]]) -> ApiError:
    return ApiError(422, "invalid_request", summary, details)


async def _customer_body(request: Request, ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """The body of ``PUT /customers``, parsed here rather than by FastAPI, so that a body that is
    not UTF-8, nested past ``HERALD_MAX_JSON_DEPTH`` (even past what the JSON parser can take) or
    not an object is a 422 naming where, like a bad line of ``herald contacts import``."""
    try:
        body = load_json(await request.body(), max_depth=ctx.settings.max_json_depth)
    except JsonRejected as exc:
        field = "body" + (
            "" if not exc.field else exc.field if exc.field.startswith("[") else f".{exc.field}"
        )
        # The API's word for it, as for every other body (producers/api/errors.py).
        reason = exc.reason.replace("not valid JSON: ", "malformed JSON: ", 1)
        raise _invalid(
            f"invalid request: {field}: {reason}", [{"field": field, "message": reason, "type": exc.kind}]
        ) from None
    if not isinstance(body, dict):
        message = f"a customer must be a JSON object, got {json_type(body)}"
        raise _invalid(
            f"invalid request: body: {message}", [{"field": "body", "message": message, "type": "dict_type"}]
        )
    return body


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


@router.put("/customers/{customer_id}", openapi_extra=_CUSTOMER_BODY)
def put_customer(
    customer_id: str,
    key: ApiKey = needs(Capability.EDIT),  # before the body: a caller without a key learns nothing
    body: dict[str, Any] = Depends(_customer_body),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """Import one customer whole (a line of ``herald contacts import``; ``org_id`` and
    ``customer_id`` come from the key and the path): created, updated or unchanged, with warnings."""
    for field, expected in (("org_id", key.org_id), ("customer_id", customer_id)):
        if field in body and body[field] != expected:
            raise ApiError(
                422,
                "invalid_request",
                f"{field}: {_shown(body[field])} does not match {_shown(expected)}",
                [{"field": f"body.{field}"}],
            )
    try:
        record = CustomerRecord.model_validate({**body, "org_id": key.org_id, "customer_id": customer_id})
    except ValidationError as exc:
        # The path's customer_id is reported as the path's, not as a body field it never was.
        where = "body" if "customer_id" in body else "path"
        errors = [
            {**e, "loc": (where if e["loc"][:1] == ("customer_id",) else "body", *e["loc"])}
            for e in exc.errors(include_url=False)
        ]
        details = validation_details(errors)
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        raise ApiError(422, "invalid_request", f"invalid customer: {summary}", details) from None
    result = import_customer(ctx.services, record, actor=f"api:{key.key_id}")
    if result.outcome is None:
        details = [
            {"field": f"body.{path}", "message": message, "type": "refused"}
            for path, message in result.problems
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5]) or str(result.error)
        raise ApiError(422, "invalid_request", f"invalid customer: {summary}", details)
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
    (row,) = change_toggles(
        ctx.services, key.org_id, body.request(), ids=[contact_id], dry_run=dry_run, actor=f"api:{key.key_id}"
    )
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
        actor=f"api:{key.key_id}",
    )
    counts = {r: sum(row["result"] == r for row in report) for r in ("changed", "unchanged", "failed")}
    return {"dry_run": body.dry_run, "contacts": report, **counts}
