"""The hosted preference page and one-click unsubscribe (public: the signed link is the key).

- ``GET /preferences/{org}/{token}``: the contact's page, server-rendered, no script, in their
  locale (en, fi, ja), in the organisation's name and colour;
- ``POST /preferences/{org}/{token}``: save the form (it must carry the token too); the page
  again, saying what changed;
- ``POST /preferences/{org}/{token}/unsubscribe?kind=…``: RFC 8058 one-click unsubscribe, 200
  without a login or a second click (``GET`` shows the page: a mail client's prefetch must not
  unsubscribe anyone).

A malformed, tampered, expired or other organisation's token gets a page that says so and shows
nothing of anyone (400, 403 or 410), never a 5xx. The link is in the URL, so every answer is
``no-store`` and sent with ``Referrer-Policy: no-referrer`` (``SecurityHeaders``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import UploadFile

from infra.bootstrap import Services
from infra.link_tokens import PREFERENCES_PATH, LinkClaims, LinkError, LinkSigner, preference_url
from infra.settings import Settings
from infra.store.preferences import load_contact_preferences, load_preference_settings
from infra.store.short_links import SHORT_PATH, resolve_short_link
from producers.api.preference_texts import language, texts
from producers.operations.preferences import one_click, save_form
from schemas.toggles import EMAIL_CATEGORIES, Change

logger = logging.getLogger("herald.api.preferences")

#: The page's own policy: its inline style, no script, and its form posts only to us.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'"
)
HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": PAGE_POLICY}
DEFAULT_COLOUR = "#1f5f8b"
_STATUS = {"malformed": 400, "expired": 410}


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("producers.api", "page_templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def preferences_router(settings: Settings, services: Callable[[], Services]) -> APIRouter:
    """The page and one-click unsubscribe, verified with ``HERALD_LINK_SECRET``."""
    router = APIRouter(include_in_schema=False)
    signer = LinkSigner.from_settings(settings)
    env = _environment()

    def html(template: str, status: int = 200, **values: Any) -> HTMLResponse:
        values.setdefault("colour", DEFAULT_COLOUR)
        values.setdefault("lang", "en")
        values.setdefault("org_name", "")
        return HTMLResponse(env.get_template(template).render(**values), status_code=status, headers=HEADERS)

    def refused(problem: str) -> HTMLResponse:
        t = texts("en")
        message = {"malformed": t["bad_malformed"], "expired": t["bad_expired"]}.get(problem, t["bad_other"])
        return html("message.html", _STATUS.get(problem, 403), title=t["bad_title"], message=message)

    def verified(org_id: str, token: str) -> LinkClaims | HTMLResponse:
        if signer is None:
            logger.warning("preference link refused: HERALD_LINK_SECRET is not set")
            return refused("unknown_key")
        try:
            return signer.verify(token, org_id=org_id)
        except LinkError as exc:
            logger.info("preference link refused: %s", exc.problem, extra={"org_id": org_id[:60]})
            return refused(exc.problem)

    def page(claims: LinkClaims, token: str, saved: list[Change] | None = None) -> HTMLResponse:
        with services().reading() as conn:
            prefs = load_contact_preferences(conn, claims.org_id, claims.contact_id)
            org = load_preference_settings(conn, claims.org_id)
        if prefs is None:
            return refused("gone")
        t = texts(prefs.locale)
        accounts = {a.customer_id: a.name for a in prefs.accounts}
        return html(
            "preferences.html",
            lang=language(prefs.locale),
            title=t["title"],
            t=t,
            org_name=org.name,
            colour=org.brand_colour or DEFAULT_COLOUR,
            token=token,
            action="",  # the page's own URL: the token stays in the path
            emails=[
                (address, notify, [(c, categories[c]) for c in EMAIL_CATEGORIES], address in prefs.suppressed)
                for address, (notify, categories) in prefs.emails.items()
            ],
            required=org.required_categories,
            required_reason=org.required_reason or t["required_reason"].format(org=org.name),
            show_sms=prefs.has_mobile and bool(prefs.accounts),
            opted_out=prefs.sms_opted_out,
            accounts=prefs.accounts,
            saved=None if saved is None else [_describe(c, t, accounts) for c in saved],
        )

    @router.get(SHORT_PATH + "/{code}", response_class=HTMLResponse)
    def short(code: str) -> Response:
        with services().reading() as conn:
            found = resolve_short_link(conn, code)
        if found is None:
            return refused("expired")
        org_id, token = found
        return RedirectResponse(preference_url("", org_id, token), status_code=303, headers=HEADERS)

    @router.get(PREFERENCES_PATH + "/{org_id}/{token}", response_class=HTMLResponse)
    def show(org_id: str, token: str) -> Response:
        claims = verified(org_id, token)
        return claims if isinstance(claims, HTMLResponse) else page(claims, token)

    @router.get(PREFERENCES_PATH + "/{org_id}/{token}/unsubscribe", response_class=HTMLResponse)
    def show_from_unsubscribe(org_id: str, token: str) -> Response:
        claims = verified(org_id, token)
        return claims if isinstance(claims, HTMLResponse) else page(claims, token)

    @router.post(PREFERENCES_PATH + "/{org_id}/{token}", response_class=HTMLResponse)
    async def save(org_id: str, token: str, request: Request) -> Response:
        claims = verified(org_id, token)
        if isinstance(claims, HTMLResponse):
            return claims
        form = await request.form()
        if any(isinstance(v, UploadFile) for v in form.values()):
            return refused("malformed")
        fields = {str(k): str(v) for k, v in form.items()}
        if fields.get("token") != token or fields.get("form") != "preferences":
            return refused("malformed")  # not our page's form: change nothing
        with services().transaction() as conn:
            changes = save_form(conn, claims, load_preference_settings(conn, claims.org_id), fields)
        if changes is None:
            return refused("gone")
        return page(claims, token, saved=changes)

    @router.post(PREFERENCES_PATH + "/{org_id}/{token}/unsubscribe")
    def unsubscribe(org_id: str, token: str, kind: str | None = None) -> Response:
        claims = verified(org_id, token)
        if isinstance(claims, HTMLResponse):
            return claims
        with services().transaction() as conn:
            assert signer is not None  # verified() refuses every token without one
            changes = one_click(conn, signer, claims, load_preference_settings(conn, claims.org_id), kind)
        if changes is None:
            return refused("gone")
        return PlainTextResponse(texts("en")["unsubscribed"], headers={"Cache-Control": "no-store"})

    return router


def _describe(change: Change, t: dict[str, str], accounts: dict[str, str]) -> str:
    head, _, toggle = change.what.rpartition(" ")
    value = f"{t['on' if change.old else 'off']} → {t['on' if change.new else 'off']}"
    if head.startswith("customer ") and toggle == "sms":
        customer = head.removeprefix("customer ")
        return f"{t['sms_change'].format(account=accounts.get(customer, customer))}: {value}"
    label = t["notify"] if toggle == "notify" else t.get(toggle, toggle)
    return f"{head}: {label}: {value}"
