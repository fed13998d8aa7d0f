"""Short preference links for SMS: a random code standing for a signed link token.

A full token is some 150 characters, a whole SMS segment; ``/p/<code>`` is a dozen. The code is
random (72 bits), expires with its token, and opens nothing but the redirect to the token's page,
where the token itself is verified as ever.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infra.store.tables import preference_settings, short_links

#: Where the api answers a short link.
SHORT_PATH = "/p"
_CODE_CHARS = 12


def orgs_with_sms_links(conn: Connection, org_ids: Iterable[str]) -> set[str]:
    """Which of ``org_ids`` put a short preference link in their SMS."""
    wanted = sorted(set(org_ids))
    if not wanted:
        return set()
    rows = conn.execute(
        select(preference_settings.c.org_id).where(
            preference_settings.c.org_id.in_(wanted), preference_settings.c.sms_link.is_(True)
        )
    )
    return {r.org_id for r in rows}


def create_short_link(conn: Connection, org_id: str, token: str, ttl_seconds: int) -> str:
    """A new code for ``token`` (valid as long as the token is)."""
    code = secrets.token_urlsafe(9)[:_CODE_CHARS]
    expires = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
    conn.execute(short_links.insert().values(code=code, org_id=org_id, token=token, expires_at=expires))
    return code


def resolve_short_link(conn: Connection, code: str) -> tuple[str, str] | None:
    """``(org id, token)`` of an unexpired code, else ``None``."""
    if not (0 < len(code) <= 16 and code.isascii() and code.replace("-", "").replace("_", "").isalnum()):
        return None
    row = conn.execute(select(short_links).where(short_links.c.code == code)).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    return (row.org_id, row.token) if expires > datetime.now(UTC) else None
