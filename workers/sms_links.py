"""The short preference link an organisation may put at the end of its SMS (``sms_link`` in its
preference settings; docs/preferences.md). Added when the text is rendered, so the stored text,
its segments and the credit reserved for it are what is sent."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Connection

from infra.link_tokens import LinkSigner
from infra.settings import Settings
from infra.store.rendering import ToRender
from infra.store.short_links import SHORT_PATH, create_short_link, orgs_with_sms_links

#: The most an SMS body may be (``workers.rules.segments``): a link that would pass it is left out.
MAX_SMS_CHARS = 1600


def with_sms_links(
    conn: Connection, settings: Settings, rows: Mapping[str, ToRender], texts: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """``texts`` (notification id, SMS body) with the short link appended where the organisation
    asks for one; one ``SELECT`` per batch, one ``INSERT`` per link."""
    signer = LinkSigner.from_settings(settings)
    if not texts or signer is None or not settings.public_url:
        return texts
    wanting = orgs_with_sms_links(conn, (rows[nid].org_id for nid, _ in texts))
    if not wanting:
        return texts
    out: list[tuple[str, str]] = []
    for nid, body in texts:
        row = rows[nid]
        if row.org_id in wanting:
            token = signer.sign(row.org_id, row.contact_id, "")
            url = f"{settings.public_url}{SHORT_PATH}/"
            if len(body) + 1 + len(url) + 12 <= MAX_SMS_CHARS:
                body = f"{body} {url}{create_short_link(conn, row.org_id, token, signer.ttl_seconds)}"
        out.append((nid, body))
    return out
