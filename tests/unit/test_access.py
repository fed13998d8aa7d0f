"""API key levels: view; view and send; view and edit; everything."""

from __future__ import annotations

from schemas.access import Capability, Level
from workers.rules.access import allows


def test_view_only_reads() -> None:
    assert [c for c in Capability if allows(Level.VIEW, c)] == [Capability.VIEW]


def test_send_reads_and_sends_but_does_not_edit() -> None:
    assert [c for c in Capability if allows(Level.SEND, c)] == [Capability.VIEW, Capability.SEND]


def test_edit_reads_and_edits_but_does_not_send() -> None:
    assert [c for c in Capability if allows(Level.EDIT, c)] == [Capability.VIEW, Capability.EDIT]


def test_only_admin_reveals_numbers_and_addresses() -> None:
    assert [level for level in Level if allows(level, Capability.REVEAL)] == [Level.ADMIN]
    assert all(allows(Level.ADMIN, c) for c in Capability)
