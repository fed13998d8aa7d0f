"""The organisation's local-time settings over HTTP, as ``herald orgs set --timezone …``: the key's
organisation only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from infra.store.api_keys import ApiKey
from infra.store.organisations import org_settings, update_org
from producers.api.auth import ApiContext, context, needs
from producers.operations.local_time import local_time_changes, local_time_view
from schemas.access import Capability

router = APIRouter(tags=["organisation"])


class LocalTimeChange(BaseModel):
    """The settings to change; those left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    timezone: StrictStr | None = Field(None, max_length=64, examples=["Europe/Helsinki"])
    reminder_hour: StrictInt | None = Field(None, ge=0, le=23, examples=[9])
    country: StrictStr | None = Field(None, max_length=2, examples=["FI"], description="'' clears it")
    subdivision: StrictStr | None = Field(None, max_length=10)
    business_days: StrictBool | None = None
    send_windows: dict[StrictStr, StrictStr] | None = Field(
        None, max_length=20, examples=[{"sms": "08:00-21:00", "email": "any", "payment_thank_you:sms": "any"}]
    )
    replace_send_windows: StrictBool = Field(False, description="Forget the current windows first.")
    collection_grace_days: StrictInt | None = Field(None, ge=0, le=60, examples=[3])


@router.get("/organisation/local-time")
def get_local_time(
    key: ApiKey = needs(Capability.VIEW), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """The organisation's time zone, reminder hour, holiday calendar and send windows (null: the
    deployment's defaults)."""
    with ctx.services.reading() as conn:
        return local_time_view(org_settings(conn, key.org_id))


@router.patch("/organisation/local-time")
def patch_local_time(
    body: LocalTimeChange, key: ApiKey = needs(Capability.EDIT), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Change them, checked as ``herald orgs set`` checks them: 422 naming the bad value, nothing
    changed."""
    with ctx.services.transaction() as conn:
        current = org_settings(conn, key.org_id)
        changes = local_time_changes(
            current,
            timezone=body.timezone,
            reminder_hour=body.reminder_hour,
            country=body.country,
            subdivision=body.subdivision,
            business_days=body.business_days,
            send_windows=body.send_windows,
            clear_windows=body.replace_send_windows,
            collection_grace_days=body.collection_grace_days,
        )
        return local_time_view(update_org(conn, key.org_id, changes))
