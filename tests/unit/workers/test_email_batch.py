"""The ``email`` stage's batch actor (issue 15) on the StubBroker with ``FakeEmail``: each email of
a batch gets its own outcome, the good ones are sent exactly once, what must wait comes back
alone, and a try cut short is resent with the same Message-ID, logged ambiguous."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dramatiq
from sqlalchemy import update

from infra.store.notifications import claim_for_sending_many, store_rendered_email
from infra.store.tables import notifications
from schemas.messages import EmailsRendered
from tests.integration.stored import routed_notification
from tests.unit.workers.conftest import Stages
from workers import email

GOOD = ("aino@example.fi", "eero@example.fi", "liisa@example.fi")


def _rendered(stages: Stages, address: str, subject: str = "Lasku 1001") -> str:
    nid = routed_notification(stages.services, "email", address, event_id=f"evt_{address.split('@')[0]}")
    with stages.services.transaction() as conn:
        store_rendered_email(conn, nid, subject, "Hei", "<p>Hei</p>")
    return nid


def _send(stages: Stages, *ids: str) -> None:
    stages.deliver(EmailsRendered(notification_ids=list(ids)))
    stages.run("email")


def _sent_to(stages: Stages) -> list[str]:
    return sorted(str(m["To"]) for m in stages.email.sent)


def test_a_batch_sends_each_good_email_once_and_gives_every_other_its_own_outcome(stages: Stages) -> None:
    stages.services.settings = stages.services.settings.model_copy(update={"send_call_attempts": 1})
    good = [_rendered(stages, a) for a in GOOD]
    refused = _rendered(stages, "nobody@example.fi")
    stages.email.refuse["nobody@example.fi"] = 550
    header = _rendered(stages, "kalle@example.fi", subject="Lasku\r\nBcc: victim@example.com")
    stages.email.busy["busy@example.fi"] = 1
    busy = _rendered(stages, "busy@example.fi")
    unrendered = routed_notification(stages.services, "email", "x@example.fi", event_id="evt_x")
    _send(stages, good[0], refused, busy, header, unrendered, good[1], good[2])

    assert _sent_to(stages) == sorted([*GOOD, "busy@example.fi"])  # each once
    for nid in good:
        row = stages.notification(nid)
        assert (row.attempts, stages.attempts(nid)) == (1, ["accepted"])
    assert stages.attempts(busy) == ["retry", "accepted"]
    reports = stages.batch_reports()
    assert set(reports) == {*good, refused, header, busy}
    assert all(len(r) == 1 for r in reports.values())
    assert {nid: reports[nid][0]["status"] for nid in [*good, busy]} == dict.fromkeys([*good, busy], "sent")
    assert (reports[refused][0]["status"], reports[refused][0]["error_code"]) == ("failed", 550)
    assert stages.attempts(refused) == ["refused"]
    assert reports[header][0]["status"] == "failed"
    assert "line break" in reports[header][0]["detail"]
    # Never rendered as an email: handed on alone, dead-lettered with its reason at once.
    (dead,) = stages.dead_letters("email")
    assert (dead.actor_name, dead.args[0]) == ("send_email", {"notification_id": unrendered})
    assert "not rendered as an email" in str(dead._exception)


def test_a_redelivered_batch_sends_nothing_twice_and_reports_again(stages: Stages) -> None:
    ids = [_rendered(stages, a) for a in GOOD]
    _send(stages, *ids)
    _send(stages, *ids)

    assert _sent_to(stages) == sorted(GOOD)
    reports = stages.batch_reports()
    assert {nid: [r["status"] for r in found] for nid, found in reports.items()} == {
        nid: ["sent", "sent"] for nid in ids
    }
    message_ids = {str(m["Message-ID"]) for m in stages.email.sent}
    assert {r[0]["provider_id"] for r in reports.values()} == message_ids


def test_claims_of_a_batch_cut_short_are_waited_out_then_resent_with_the_same_message_id(
    stages: Stages,
) -> None:
    ids = [_rendered(stages, a) for a in GOOD]
    _send(stages, ids[0])
    first = stages.email.sent[0]["Message-ID"]
    # As if a batch had claimed all three and died, the first one after DATA went out.
    with stages.services.transaction() as conn:
        conn.execute(update(notifications).where(notifications.c.id == ids[0]).values(provider_id=None))
        claim_for_sending_many(conn, ids[1:])
    email.send_email_batch(stages.services, {"notification_ids": ids})
    assert len(stages.email.sent) == 1  # nothing resent while the attempts may be alive
    waiting = [dramatiq.Message.decode(m) for m in stages.broker.queues[f"{stages.queue('email')}.DQ"].queue]
    assert [(m.actor_name, sorted(m.args[0]["notification_ids"])) for m in waiting] == [
        ("send_email_batch", sorted(ids))
    ]
    stages.broker.flush(f"{stages.queue('email')}.DQ")
    stages.take("history")

    with stages.services.transaction() as conn:
        conn.execute(
            update(notifications)
            .where(notifications.c.id.in_(ids))
            .values(attempted_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    _send(stages, *ids)

    assert _sent_to(stages) == sorted([GOOD[0], *GOOD])  # the cut-short ones resent, once each
    assert stages.email.sent[1]["Message-ID"] == first  # receivers de-duplicate on it
    assert stages.attempts(ids[0]) == ["accepted", "ambiguous", "accepted"]
    for nid in ids[1:]:
        assert stages.attempts(nid) == ["ambiguous", "accepted"]
    reports = stages.batch_reports()
    assert {nid: [r["status"] for r in found] for nid, found in reports.items()} == {
        nid: ["sent"] for nid in ids
    }
