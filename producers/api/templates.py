"""Templates: the ``herald templates`` operations over HTTP (saved only once they check)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from infra.store.api_keys import ApiKey
from producers.api.auth import ApiContext, context, needs
from producers.operations.templates import list_templates, save_template, switch_template, template_parts
from schemas.access import Capability

router = APIRouter(tags=["templates"])


class TemplateSource(BaseModel):
    """A template part's Jinja2 source."""

    source: str = Field(..., max_length=100_000, examples=["Lasku {{ invoice.number }}: {{ total }}"])


@router.get("/templates")
def get_templates(key: ApiKey = needs(Capability.VIEW), ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """Every template of the key's organisation: shipped or its own, enabled or not."""
    return {"templates": list_templates(ctx.services, key.org_id)}


@router.get("/templates/{kind}/{channel}/{locale}")
def get_template(
    kind: str,
    channel: str,
    locale: str,
    key: ApiKey = needs(Capability.VIEW),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """A template's parts as they will be used (the organisation's own, else the shipped one)."""
    parts = template_parts(ctx.services, key.org_id, kind, channel, locale)
    return {"kind": kind, "channel": channel, "locale": locale, "parts": parts}


@router.put("/templates/{kind}/{channel}/{locale}/{part}")
def put_template(
    kind: str,
    channel: str,
    locale: str,
    part: str,
    body: TemplateSource,
    key: ApiKey = needs(Capability.EDIT),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """Check and save one part (``body`` for SMS; ``subject``, ``text``, ``html`` for email) as
    the organisation's own; 422 listing each problem with its line, nothing saved: a variable the
    kind lacks, a sandbox escape or alias of the context, a source over the size limit, or what
    its trial render meets (a value or part over its limit, a link that is not http(s))."""
    name = save_template(ctx.services, key.org_id, kind, channel, locale, part, body.source)
    return {"saved": name}


@router.post("/templates/{kind}/{channel}/enable")
def enable_template(
    kind: str, channel: str, key: ApiKey = needs(Capability.EDIT), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Switch a kind on for a channel, organisation-wide."""
    switch_template(ctx.services, key.org_id, kind, channel, True)
    return {"kind": kind, "channel": channel, "enabled": True}


@router.post("/templates/{kind}/{channel}/disable")
def disable_template(
    kind: str, channel: str, key: ApiKey = needs(Capability.EDIT), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Switch a kind off for a channel, organisation-wide (skipped as ``template_disabled``)."""
    switch_template(ctx.services, key.org_id, kind, channel, False)
    return {"kind": kind, "channel": channel, "enabled": False}
