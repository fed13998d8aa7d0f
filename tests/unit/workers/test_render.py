"""The ``render`` actor on the StubBroker: the text rendered once and kept, handed to the sender of
its channel; what cannot be rendered is reported failed to history, never retried."""

from __future__ import annotations

from infra.store.notifications import claim_for_sending
from infra.store.templates import save_override
from schemas.messages import NotificationDecided, NotificationsDecided
from tests.integration.stored import routed_notification
from tests.unit.workers.conftest import Stages, add_customer


def _render(stages: Stages, nid: str) -> None:
    stages.deliver(NotificationDecided(notification_id=nid))
    stages.run("render")


def test_an_sms_is_rendered_kept_and_handed_to_the_sms_stage(stages: Stages) -> None:
    add_customer(stages.services)
    nid = routed_notification(stages.services, "sms", "+358401234567")
    _render(stages, nid)

    row = stages.notification(nid)
    assert row.body.startswith("Lasku 1001")
    assert row.status == "pending"  # rendered, not sent: the sender moves it on
    assert stages.emitted("sms") == [("send_sms_batch", {"notification_ids": [nid]})]
    assert stages.emitted("email") == []
    assert stages.dead_letters("render") == []


def test_an_email_gets_subject_text_and_html_and_goes_to_the_email_stage(stages: Stages) -> None:
    add_customer(stages.services)
    nid = routed_notification(stages.services, "email", "aino@example.fi")
    _render(stages, nid)

    row = stages.notification(nid)
    assert "1001" in row.subject
    assert row.body
    assert row.html
    assert "<" in row.html
    assert stages.emitted("email") == [("send_email_batch", {"notification_ids": [nid]})]
    assert stages.emitted("sms") == []


def test_a_redelivered_message_keeps_the_first_text_and_hands_it_on_again(stages: Stages) -> None:
    add_customer(stages.services)
    nid = routed_notification(stages.services, "sms", "+358401234567")
    _render(stages, nid)
    first = stages.notification(nid).body
    with stages.services.transaction() as conn:  # a template changed since: the text does not
        save_override(conn, "acme", ("invoice", "sms", "fi", "body"), "Uusi teksti {{ invoice.number }}")
    _render(stages, nid)

    assert stages.notification(nid).body == first
    assert stages.emitted("sms") == [("send_sms_batch", {"notification_ids": [nid]})] * 2


def test_an_amount_that_cannot_be_shown_is_reported_failed_with_its_reason_and_not_retried(
    stages: Stages,
) -> None:
    add_customer(stages.services)
    nid = routed_notification(stages.services, "sms", "+358401234567", total="1e400")
    _render(stages, nid)

    assert stages.notification(nid).body is None
    ((actor, body),) = stages.emitted("history")
    assert actor == "record_statuses"
    (report,) = body["reports"]
    assert (report["notification_id"], report["status"], report["source"]) == (nid, "failed", "render")
    assert "total" in report["detail"]
    assert stages.emitted("sms") == []
    assert stages.dead_letters("render") == []  # recorded, not an error to retry


def test_a_notification_that_is_no_longer_pending_is_left_alone(stages: Stages) -> None:
    add_customer(stages.services)
    nid = routed_notification(stages.services, "sms", "+358401234567")
    with stages.services.transaction() as conn:
        claim_for_sending(conn, nid)
    _render(stages, nid)

    assert stages.notification(nid).body is None
    assert stages.emitted("sms") == []
    assert stages.emitted("history") == []


def test_an_unknown_notification_is_dead_lettered_at_once(stages: Stages) -> None:
    _render(stages, "ntf_" + "0" * 32)

    (dead,) = stages.dead_letters("render")
    assert "unknown notification" in str(dead._exception)
    assert dead.options["retries"] == 1  # tried once: permanent, never retried


# -- batches (issue 15) ---------------------------------------------------------------------------


def _render_batch(stages: Stages, ids: list[str]) -> None:
    stages.deliver(NotificationsDecided(notification_ids=ids))
    stages.run("render")


def test_a_batch_renders_each_hands_each_sender_one_message_and_fails_or_dead_letters_the_bad_alone(
    stages: Stages,
) -> None:
    add_customer(stages.services)
    sms = routed_notification(stages.services, "sms", "+358401234567", event_id="evt_s")
    email = routed_notification(stages.services, "email", "aino@example.fi", event_id="evt_e")
    poison = routed_notification(stages.services, "sms", "+358401234568", event_id="evt_x", total="1e400")
    unknown = "ntf_" + "0" * 32
    _render_batch(stages, [sms, unknown, poison, email])

    assert stages.notification(sms).body.startswith("Lasku 1001")
    assert stages.notification(email).subject
    assert stages.notification(poison).body is None
    assert stages.take("sms") == [("send_sms_batch", {"notification_ids": [sms]})]
    assert stages.take("email") == [("send_email_batch", {"notification_ids": [email]})]
    ((actor, body),) = stages.take("history")
    assert actor == "record_statuses"
    (report,) = body["reports"]
    assert (report["notification_id"], report["status"], report["source"]) == (poison, "failed", "render")
    assert "total" in report["detail"]
    (dead,) = stages.dead_letters("render")  # the unknown one alone, as a single message
    assert (dead.actor_name, dead.args[0]) == ("render_notification", {"notification_id": unknown})
    assert "unknown notification" in str(dead._exception)

    first = stages.notification(sms).body
    with stages.services.transaction() as conn:  # a template changed, and the email went out, since
        save_override(conn, "acme", ("invoice", "sms", "fi", "body"), "Uusi teksti {{ invoice.number }}")
        claim_for_sending(conn, email)
    _render_batch(stages, [sms, unknown, poison, email])  # the same batch, redelivered

    assert stages.notification(sms).body == first  # the first text is kept
    assert stages.take("sms") == [("send_sms_batch", {"notification_ids": [sms]})]  # still pending
    assert stages.take("email") == []  # no longer pending: left alone
    ((_, again),) = stages.take("history")
    assert [r["notification_id"] for r in again["reports"]] == [poison]  # fails the same way
    assert len(stages.dead_letters("render")) == 2


def test_a_notification_twice_in_a_batch_is_rendered_and_handed_on_once(stages: Stages) -> None:
    add_customer(stages.services)
    nid = routed_notification(stages.services, "sms", "+358401234567")
    _render_batch(stages, [nid, nid])

    assert stages.emitted("sms") == [("send_sms_batch", {"notification_ids": [nid]})]
