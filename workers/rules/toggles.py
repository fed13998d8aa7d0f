"""Bulk toggle changes, planned without I/O: which toggles a request would move on a contact."""

from __future__ import annotations

from schemas.toggles import EMAIL_CATEGORIES, Action, Change, ContactToggles, ToggleRequest


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


def toggle_diff(old: ContactToggles, new: ContactToggles) -> list[Change]:
    """The toggles that differ between two states of one contact (an import's before and after);
    an address on one side only is not a change of a toggle."""
    changes: list[Change] = []
    if old.sms_enabled != new.sms_enabled and new.sms_enabled is not None:
        was = old.sms_enabled if old.sms_enabled is not None else old.is_primary
        if was != new.sms_enabled:
            changes.append(Change("sms", was, new.sms_enabled))
    for address in sorted(old.emails.keys() & new.emails.keys()):
        (notify_old, cats_old), (notify_new, cats_new) = old.emails[address], new.emails[address]
        if notify_old != notify_new:
            changes.append(Change(f"{address} notify", notify_old, notify_new))
        for category in EMAIL_CATEGORIES:
            before, after = cats_old.get(category, True), cats_new.get(category, True)
            if before != after:
                changes.append(Change(f"{address} {category}", before, after))
    return changes
