"""Bulk toggle changes: what a request asks (keep, enable all, disable all) and what would move.
The planning rule is ``workers.rules.toggles.plan``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

EMAIL_CATEGORIES: tuple[str, ...] = ("new_invoice", "pending_reminders", "payment_confirmation", "refunds")


class Action(StrEnum):
    KEEP = "keep"
    ENABLE = "enable"
    DISABLE = "disable"


@dataclass(frozen=True)
class ToggleRequest:
    """What to do with each toggle; email toggles apply to every address of a contact."""

    sms: Action = Action.KEEP
    notify: Action = Action.KEEP
    categories: dict[str, Action] = field(default_factory=dict)

    def is_noop(self) -> bool:
        return self.sms == self.notify == Action.KEEP and all(
            a == Action.KEEP for a in self.categories.values()
        )


@dataclass(frozen=True)
class ContactToggles:
    """A contact's current toggles."""

    contact_id: str
    is_primary: bool
    sms_enabled: bool | None  # None: the default for the role
    emails: dict[str, tuple[bool, dict[str, bool]]]  # address -> (notify, categories)


@dataclass(frozen=True)
class Change:
    """One toggle that moves: ``what`` names it, with its old and new value."""

    what: str
    old: bool
    new: bool

    def __str__(self) -> str:
        return f"{self.what}: {'on' if self.old else 'off'} → {'on' if self.new else 'off'}"
