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
    directory and templates, or see unmasked numbers and addresses."""

    VIEW = "view"
    SEND = "send"
    EDIT = "edit"
    REVEAL = "reveal"
