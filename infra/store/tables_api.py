"""The HTTP API's tables: API keys, stored only as hashes."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, String, Table

from infra.store.tables import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),  # public handle for list and revoke
    Column("org_id", String(200), nullable=False),
    Column("level", String(10), nullable=False),  # view, send, edit, admin
    Column("name", String(200), nullable=False, default=""),
    # SHA-256 (hex) of the whole key; the key itself is shown once and never stored.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_api_keys_org", "org_id"),
)
