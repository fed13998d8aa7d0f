"""Bulk toggle changes: keep, enable all or disable all, planned without I/O."""

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


def _target(action: Action, current: bool) -> bool:
    return {Action.KEEP: current, Action.ENABLE: True, Action.DISABLE: False}[action]


def plan(contact: ContactToggles, request: ToggleRequest) -> list[Change]:
    """The toggles ``request`` would change on ``contact`` (nothing for a no-op)."""
    changes: list[Change] = []
    sms_now = contact.sms_enabled if contact.sms_enabled is not None else contact.is_primary
    sms_new = _target(request.sms, sms_now)
    if sms_new != sms_now:
        changes.append(Change("sms", sms_now, sms_new))
    for address, (notify, categories) in sorted(contact.emails.items()):
        notify_new = _target(request.notify, notify)
        if notify_new != notify:
            changes.append(Change(f"{address} notify", notify, notify_new))
        for category in EMAIL_CATEGORIES:
            now = categories.get(category, True)
            new = _target(request.categories.get(category, Action.KEEP), now)
            if new != now:
                changes.append(Change(f"{address} {category}", now, new))
    return changes
