"""API keys: created (shown once), listed, revoked, and looked up by the hash of the key.

A key is 256 random bits, so one SHA-256 is enough to store it: a slow password hash (bcrypt,
argon2) exists to make guessing low-entropy passwords expensive, and nobody can guess 2^256
keys; a plain hash also lets every request find its key with one indexed look-up instead of a
bcrypt check (~100 ms of CPU) against every key of the organisation.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from infra.store.tables import api_keys
from schemas.access import Level

#: Every key starts with this, so a leaked one is recognisable (secret scanners, logs).
KEY_PREFIX = "hk_"


@dataclass(frozen=True)
class ApiKey:
    """An active key as the API sees it: whose it is and what it may do (never the key itself)."""

    key_id: str
    org_id: str
    level: Level
    name: str


def hash_key(key: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: Connection, org_id: str, level: Level, name: str = "") -> tuple[ApiKey, str]:
    """Make a key for ``org_id``; returns it and its plaintext, which is stored nowhere."""
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(key_id="key_" + secrets.token_hex(8), org_id=org_id, level=Level(level), name=name)
    conn.execute(
        api_keys.insert().values(
            key_id=key.key_id,
            org_id=org_id,
            level=key.level.value,
            name=name,
            key_hash=hash_key(plaintext),
            created_at=datetime.now(UTC),
        )
    )
    return key, plaintext


def list_keys(conn: Connection, org_id: str) -> list[dict[str, Any]]:
    """An organisation's keys, revoked ones too, oldest first (no hashes)."""
    rows = conn.execute(
        select(
            api_keys.c.key_id,
            api_keys.c.level,
            api_keys.c.name,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        )
        .where(api_keys.c.org_id == org_id)
        .order_by(api_keys.c.created_at, api_keys.c.key_id)
    ).mappings()
    return [dict(r) for r in rows]


def revoke_key(conn: Connection, key_id: str, org_id: str | None = None) -> bool:
    """Revoke a key (from now on it answers 401); False when there is no such active key."""
    where = [api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)]
    if org_id is not None:
        where.append(api_keys.c.org_id == org_id)
    result = conn.execute(update(api_keys).where(*where).values(revoked_at=datetime.now(UTC)))
    return bool(result.rowcount)


def authenticate(conn: Connection, plaintext: str) -> ApiKey | None:
    """The active key whose hash matches, or ``None`` (unknown, malformed or revoked)."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    row = conn.execute(
        select(api_keys.c.key_id, api_keys.c.org_id, api_keys.c.level, api_keys.c.name).where(
            api_keys.c.key_hash == hash_key(plaintext), api_keys.c.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    return ApiKey(key_id=row.key_id, org_id=row.org_id, level=Level(row.level), name=row.name)
