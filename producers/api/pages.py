"""Public pages (no API key): where payers land after GoCardless's mandate-setup flow.

The collect stage asks GoCardless to send the payer back to ``HERALD_PUBLIC_URL`` +
``MANDATE_COMPLETE_PATH`` (with ``?org=`` the organisation's id). The page only says thank
you: the mandate itself reaches herald through GoCardless's webhooks, not this redirect.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.tables import organisations

logger = logging.getLogger("herald.api.pages")

#: Where GoCardless sends the payer once the mandate is set up (``workers.collect`` builds the URL).
MANDATE_COMPLETE_PATH = "/mandates/complete"
#: An organisation id as the event contract has it (``schemas.messages.ExternalId``).
_ORG_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,200}")

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Direct Debit set up</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem;
  color: #222; line-height: 1.5; }}
h1 {{ font-size: 1.5rem; }}
</style>
</head>
<body>
<h1>Thank you — your Direct Debit is set up</h1>
<p>{who}You can close this page.</p>
</body>
</html>
"""


def pages_router(settings: Settings, services: Callable[[], Services]) -> APIRouter:
    """``GET /mandates/complete``: a plain thank-you page, public, in English."""
    router = APIRouter(include_in_schema=False)

    def org_name(org_id: str | None) -> str | None:
        # Only an id of the contract's shape is looked up, exactly as given: a longer one is not
        # cut down to a prefix that might be someone's, and odd bytes never reach the database.
        if not org_id or not _ORG_ID.fullmatch(org_id):
            return None
        try:
            with services().reading() as conn:
                name = conn.execute(
                    select(organisations.c.name).where(organisations.c.org_id == org_id)
                ).scalar()
        except Exception:  # the database away must not cost the payer their thank-you
            logger.warning("mandate landing page: organisation name not looked up", exc_info=True)
            return None
        return str(name) if name else None

    @router.get(MANDATE_COMPLETE_PATH, response_class=HTMLResponse)
    def mandate_complete(org: str | None = None) -> HTMLResponse:
        name = org_name(org)
        who = f"{html.escape(name)} will collect your payments by Direct Debit from now on. " if name else ""
        return HTMLResponse(_PAGE.format(who=who), headers={"Cache-Control": "no-store"})

    return router
