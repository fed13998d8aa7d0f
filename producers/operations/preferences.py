"""What a contact's own choices change: the preference page's form and one-click unsubscribe.

Both go through the consent trail (``infra.store.consent.apply_consent``), by the link that was
used (``link:<key id>:<token id>``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Connection

from infra.link_tokens import LinkClaims, LinkSigner
from infra.store.consent import apply_consent
from infra.store.preferences import ContactPreferences, PreferenceSettings, load_contact_preferences
from schemas.notifications import Kind
from schemas.toggles import EMAIL_CATEGORIES, EMAIL_CATEGORY, Change


def link_actor(claims: LinkClaims) -> str:
    """Who changed it, as the trail records a link: its key id and token id (never the token)."""
    return f"link:{claims.key_id}:{claims.token_id}"


def form_changes(
    prefs: ContactPreferences, settings: PreferenceSettings, form: Mapping[str, str]
) -> list[Change]:
    """The toggles a submitted page moves (pure). An unticked box is absent from a form, so every
    toggle the page showed is read as on when present and off when absent; required categories
    and accounts the organisation blocks were not offered and are never changed."""
    changes: list[Change] = []
    for address, (notify, categories) in sorted(prefs.emails.items()):
        wanted = f"notify|{address}" in form
        if wanted != notify:
            changes.append(Change(f"{address} notify", notify, wanted))
        for category in EMAIL_CATEGORIES:
            if category in settings.required_categories:
                continue
            wanted = f"{category}|{address}" in form
            if wanted != categories[category]:
                changes.append(Change(f"{address} {category}", categories[category], wanted))
    if prefs.has_mobile:
        for account in prefs.accounts:
            if account.blocked_by_org:
                continue
            wanted = f"sms|{account.customer_id}" in form
            if wanted != account.sms:
                changes.append(Change(f"customer {account.customer_id} sms", account.sms, wanted))
    return changes


def save_form(
    conn: Connection, claims: LinkClaims, settings: PreferenceSettings, form: Mapping[str, str]
) -> list[Change] | None:
    """Apply a submitted page; the changes written, or ``None`` when the contact is gone."""
    prefs = load_contact_preferences(conn, claims.org_id, claims.contact_id)
    if prefs is None:
        return None
    changes = form_changes(prefs, settings, form)
    return apply_consent(
        conn, claims.org_id, claims.contact_id, changes, source="preference_page", actor=link_actor(claims)
    )


def unsubscribe_changes(
    prefs: ContactPreferences, settings: PreferenceSettings, address: str, kind: str | None
) -> list[Change]:
    """What one-click unsubscribe switches off for ``address`` (pure): the category of the email's
    kind, or every optional category when the organisation says so (or the kind is unknown);
    never a required one."""
    current = prefs.emails.get(address)
    if current is None:
        return []
    _, categories = current
    category = next((c for k, c in EMAIL_CATEGORY.items() if k == kind), None) if kind else None
    if settings.unsubscribe_scope == "all" or category is None:
        targets = [c for c in EMAIL_CATEGORIES if c not in settings.required_categories]
    else:
        targets = [] if category in settings.required_categories else [category]
    return [Change(f"{address} {c}", True, False) for c in targets if categories[c]]


def one_click(
    conn: Connection, signer: LinkSigner, claims: LinkClaims, settings: PreferenceSettings, kind: str | None
) -> list[Change] | None:
    """RFC 8058 one-click unsubscribe of the token's address; the changes written, or ``None``
    when the contact is gone. An address the contact no longer has changes nothing."""
    prefs = load_contact_preferences(conn, claims.org_id, claims.contact_id)
    if prefs is None:
        return None
    address = signer.address_of(claims, prefs.emails)
    changes = unsubscribe_changes(prefs, settings, address, kind) if address else []
    return apply_consent(
        conn,
        claims.org_id,
        claims.contact_id,
        changes,
        source="one_click",
        actor=link_actor(claims),
        detail=f"List-Unsubscribe-Post on an email of kind {kind}" if kind in set(Kind) else None,
    )
