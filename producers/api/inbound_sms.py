"""``POST /webhooks/twilio/inbound``: SMS keywords from the people we text.

Signed like the status callbacks (``X-Twilio-Signature`` over ``HERALD_PUBLIC_URL`` + the path;
403 without it). STOP and its synonyms opt the sender out of SMS from every organisation that
texts from the number it was sent to; START, YES, UNSTOP opt them back in (clearing what a 21610
set); HELP is answered with the organisation's help text. Every change is in the consent trail.
Anything else is an ordinary reply: answered with nothing. The answer is TwiML.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from infra.bootstrap import Services
from infra.masking import mask_recipient
from infra.settings import Settings
from infra.store.preferences import load_preference_settings
from infra.store.sms_consent import contacts_texting, set_opted_out
from producers.api.errors import ApiError
from workers.rules.sms_keywords import Keyword, parse_keyword

logger = logging.getLogger("herald.api.inbound_sms")

INBOUND_PATH = "/webhooks/twilio/inbound"
DEFAULT_HELP = "Reply STOP to stop text messages, START to get them again."
#: A number as Twilio sends ``From``/``To`` (E.164); anything else matches no contact.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SID = re.compile(r"[A-Za-z0-9]{2,64}")


def inbound_router(settings: Settings, services: Callable[[], Services]) -> APIRouter:
    """The inbound-message webhook; 403 unless ``X-Twilio-Signature`` is right."""
    router = APIRouter(include_in_schema=False)
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    validator = RequestValidator(token)

    def handle(keyword: Keyword, sender: str, to: str, sid: str) -> str | None:
        """Apply the keyword; the help text to answer with, if any."""
        svc = services()
        with svc.transaction() as conn:
            found = contacts_texting(
                conn, sender, to, default_from=settings.twilio_from, default_region=settings.default_region
            )
            if keyword in (Keyword.STOP, Keyword.START):
                moved = set_opted_out(
                    conn,
                    found,
                    keyword == Keyword.STOP,
                    actor=f"twilio:{sid}" if sid else "twilio",
                    detail=f"replied {keyword.value.upper()} to {to}",
                )
                logger.info(
                    "sms keyword",
                    extra={"keyword": keyword.value, "from": mask_recipient(sender), "contacts": moved},
                )
                return None
            if keyword == Keyword.HELP:
                texts = [load_preference_settings(conn, org_id).sms_help_text for org_id, _, _ in found]
                return next((t for t in texts if t), DEFAULT_HELP)
        return None

    @router.post(INBOUND_PATH)
    async def inbound(request: Request) -> Response:
        parsed = await request.form()
        if any(isinstance(v, UploadFile) for v in parsed.values()):
            raise ApiError(400, "bad_request", "an inbound message is a form of fields, not of files")
        form = {k: str(v) for k, v in parsed.items()}
        base = settings.public_url or str(request.base_url).rstrip("/")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token or not signature or not validator.validate(f"{base}{request.url.path}", form, signature):
            raise HTTPException(status_code=403, detail="invalid or missing X-Twilio-Signature")
        keyword = parse_keyword(form.get("Body"), form.get("OptOutType"))
        sender, to = form.get("From", ""), form.get("To", "")
        sid = form.get("MessageSid", "")
        answer = MessagingResponse()
        if keyword != Keyword.NONE and _E164.fullmatch(sender) and _E164.fullmatch(to):
            help_text = await run_in_threadpool(
                handle, keyword, sender, to, sid if _SID.fullmatch(sid) else ""
            )
            if help_text:
                answer.message(help_text)
        return Response(str(answer), media_type="text/xml")

    return router
