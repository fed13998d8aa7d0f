"""What an API key of each level may do: a pure rule, shared by the HTTP API and its tests."""

from __future__ import annotations

from schemas.access import Capability, Level

#: Send and edit are siblings, not a ladder: the billing system that publishes events has no
#: business rewriting templates, and a directory editor should not trigger sends.
GRANTS: dict[Level, frozenset[Capability]] = {
    Level.VIEW: frozenset({Capability.VIEW}),
    Level.SEND: frozenset({Capability.VIEW, Capability.SEND}),
    Level.EDIT: frozenset({Capability.VIEW, Capability.EDIT}),
    Level.ADMIN: frozenset(Capability),
}


def allows(level: Level, capability: Capability) -> bool:
    """Whether a key of ``level`` may do what ``capability`` names."""
    return capability in GRANTS[level]
