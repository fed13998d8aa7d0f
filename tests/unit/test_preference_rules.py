"""What a contact's own choices change (pure): the page's form, one-click unsubscribe, an import's
toggle diff, and which toggle stands behind a skip."""

from __future__ import annotations

from infra.store.preferences import AccountChoice, ContactPreferences, PreferenceSettings, account_sms
from producers.operations.preferences import form_changes, unsubscribe_changes
from schemas.toggles import EMAIL_CATEGORIES, Change, ContactToggles, toggles_behind
from workers.email_links import with_footer
from workers.rules.toggles import toggle_diff

ALL_ON = {c: True for c in EMAIL_CATEGORIES}
PREFS = ContactPreferences(
    contact_id="P1",
    name="Aino",
    locale="fi",
    has_mobile=True,
    sms_opted_out=False,
    emails={"a@x.fi": (True, dict(ALL_ON)), "b@x.fi": (True, dict(ALL_ON))},
    accounts=(AccountChoice("C1", "Home", True, False), AccountChoice("C2", "Cottage", True, True)),
)
ORG = PreferenceSettings("acme", "Acme Oy", required_categories=frozenset({"pending_reminders"}))


def full_form() -> dict[str, str]:
    form = {"token": "t", "form": "preferences", "sms|C1": "on"}
    for address in ("a@x.fi", "b@x.fi"):
        form[f"notify|{address}"] = "on"
        form.update({f"{c}|{address}": "on" for c in EMAIL_CATEGORIES if c != "pending_reminders"})
    return form


def test_the_form_as_shown_changes_nothing() -> None:
    assert form_changes(PREFS, ORG, full_form()) == []


def test_an_unticked_box_switches_its_toggle_off() -> None:
    form = full_form()
    del form["refunds|b@x.fi"], form["sms|C1"], form["notify|a@x.fi"]
    assert form_changes(PREFS, ORG, form) == [
        Change("a@x.fi notify", True, False),
        Change("b@x.fi refunds", True, False),
        Change("customer C1 sms", True, False),
    ]


def test_required_categories_and_blocked_accounts_are_never_changed_by_the_form() -> None:
    form = full_form()  # pending_reminders is absent (locked), C2 is absent (the org blocks it)
    assert all(
        "pending_reminders" not in c.what and "C2" not in c.what for c in form_changes(PREFS, ORG, form)
    )


def test_fields_of_addresses_or_accounts_not_the_contacts_are_ignored() -> None:
    form = {**full_form(), "notify|eve@x.fi": "on", "sms|C99": "on", "refunds|a@x.fi\x00": "on"}
    assert form_changes(PREFS, ORG, form) == []


def test_one_click_switches_off_the_kinds_category_for_that_address_only() -> None:
    assert unsubscribe_changes(PREFS, ORG, "a@x.fi", "invoice") == [Change("a@x.fi new_invoice", True, False)]
    assert unsubscribe_changes(PREFS, ORG, "a@x.fi", "payment_reminder") == []  # required
    assert unsubscribe_changes(PREFS, ORG, "eve@x.fi", "invoice") == []  # not the contact's address


def test_one_click_of_an_unknown_kind_or_scope_all_switches_off_every_optional_category() -> None:
    expected = [
        Change(f"a@x.fi {c}", True, False) for c in ("new_invoice", "payment_confirmation", "refunds")
    ]
    assert unsubscribe_changes(PREFS, ORG, "a@x.fi", None) == expected
    assert unsubscribe_changes(PREFS, ORG, "a@x.fi", "no-such-kind") == expected
    everything = PreferenceSettings("acme", "Acme Oy", unsubscribe_scope="all")
    assert len(unsubscribe_changes(PREFS, everything, "a@x.fi", "invoice")) == 4


def test_an_accounts_sms_as_the_routing_rules_decide_it() -> None:
    assert account_sms(None, True, None) is True
    assert account_sms(None, False, None) is False
    assert account_sms(None, False, True) is True
    assert account_sms(False, False, True) is False
    assert account_sms(True, True, False) is False


def test_an_imports_diff_names_the_toggles_that_moved_on_addresses_it_kept() -> None:
    old = ContactToggles("P1", True, None, {"a@x.fi": (True, dict(ALL_ON)), "gone@x.fi": (True, {})})
    new = ContactToggles(
        "P1", True, False, {"a@x.fi": (False, {**ALL_ON, "refunds": False}), "new@x.fi": (True, {})}
    )
    assert toggle_diff(old, new) == [
        Change("sms", True, False),
        Change("a@x.fi notify", True, False),
        Change("a@x.fi refunds", True, False),
    ]
    assert toggle_diff(old, old) == []


def test_the_toggle_behind_each_skip_reason() -> None:
    assert toggles_behind("category_off", "invoice", "a@x.fi", "C1") == ("a@x.fi new_invoice",)
    assert toggles_behind("category_off", "payment_reminder", "a@x.fi", "C1") == ("a@x.fi pending_reminders",)
    assert toggles_behind("email_notify_off", "invoice", "a@x.fi", "C1") == ("a@x.fi notify",)
    assert toggles_behind("suppressed", "invoice", "a@x.fi", "C1") == ("a@x.fi suppressed",)
    assert toggles_behind("contact_sms_off", "invoice", "+358", "C1") == ("sms", "customer C1 sms")
    assert toggles_behind("opted_out", "invoice", "+358", "C1") == ("sms_opted_out",)
    assert toggles_behind("no_phone", "invoice", "", "C1") == ()


def test_the_footer_puts_the_link_in_both_parts_escaped_in_html() -> None:
    url = "https://h.example/preferences/acme/k1.a_b.c-d?x=1&y=2"
    text, html = with_footer("Hei", "<html><body><p>Hei</p></body></html>", url, "fi")
    assert text.endswith(f"Valitse, mitä sähköposteja saat, tai peru tilaus: {url}\n")
    assert 'href="https://h.example/preferences/acme/k1.a_b.c-d?x=1&amp;y=2"' in html
    assert html.endswith("</p></body></html>")
    _, bare = with_footer("Hi", "<p>Hi</p>", url, "xx")
    assert bare.startswith("<p>Hi</p><p")
    assert "unsubscribe" in bare
