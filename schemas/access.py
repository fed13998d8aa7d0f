"""API key levels and capabilities. What each level may do is ``workers.rules.access.allows``."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """The level an API key is created with."""

    VIEW = "view"
    SEND = "send"
    EDIT = "edit"
    ADMIN = "admin"


class Capability(StrEnum):
    """What an endpoint needs: read, send (events, notifications, payment actions), change the
    directory and templates, see unmasked numbers and addresses, or manage webhook endpoints."""

    VIEW = "view"
    SEND = "send"
    EDIT = "edit"
    REVEAL = "reveal"
    #: Register, rotate, replay and resume the organisation's webhook endpoints (their secrets).
    MANAGE_WEBHOOKS = "manage_webhooks"
