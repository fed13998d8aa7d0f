"""The ``sms`` stage's batch actor (issue 15) on the StubBroker with ``FakeSms``: each notification
of a batch gets its own outcome, the good ones are sent exactly once, what must wait comes back
alone, and a batch cut short by a crash never sends twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
from sqlalchemy import update

from infra.store.integrations import mark_disconnected
from infra.store.notifications import claim_for_sending_many, store_rendered
from infra.store.organisations import update_org
from infra.store.tables import notifications
from schemas.messages import NotificationsRendered
from tests.integration.stored import routed_notification
from tests.unit.workers.conftest import PUBLIC_URL, Stages
from workers import sms

GOOD = ("+358401110001", "+358401110002", "+358401110003")
REFUSED = "+15005550001"  # the fake refuses it for good, as Twilio's magic number does
BUSY = "+358401110009"  # answered 429 once, then accepted
UNKNOWN = "ntf_" + "dead" * 8
TEXT = "Lasku 1001: 1 234,50 €"


def _rendered(stages: Stages, recipient: str, body: str = TEXT) -> str:
    nid = routed_notification(stages.services, "sms", recipient, event_id=f"evt_{recipient[1:]}")
    with stages.services.transaction() as conn:
        store_rendered(conn, nid, body)
    return nid


def _send(stages: Stages, *ids: str) -> None:
    stages.deliver(NotificationsRendered(notification_ids=list(ids)))
    stages.run("sms")


def _one_try_per_call(stages: Stages) -> None:
    # No in-call retry: a transient answer goes straight to the message-level retry.
    stages.services.settings = stages.services.settings.model_copy(update={"send_call_attempts": 1})


def _delayed(stages: Stages) -> list[tuple[str, Any, int]]:
    """What waits in the sms delay queue: (actor, body, delay in ms from now, roughly)."""
    waiting = list(stages.broker.queues[f"{stages.queue('sms')}.DQ"].queue)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    out = []
    for message in map(dramatiq.Message.decode, waiting):
        out.append((message.actor_name, message.args[0], int(message.options["eta"]) - now_ms))
    return out


def test_a_batch_with_a_poison_item_a_refusal_and_a_transient_failure_sends_each_good_one_exactly_once(
    stages: Stages,
) -> None:
    """The issue's test: the good ones sent once, every other outcome recorded, the transient one
    retried later alone and then sent once, nothing re-sent on the retry."""
    _one_try_per_call(stages)
    stages.sms.refuse[REFUSED] = 21211
    stages.sms.busy[BUSY] = 1
    good = [_rendered(stages, n) for n in GOOD]
    too_long = _rendered(stages, "+358401110004", body="x" * 1700)
    refused = _rendered(stages, REFUSED)
    busy = _rendered(stages, BUSY)
    _send(stages, good[0], UNKNOWN, busy, good[1], too_long, refused, good[2])

    # Each good one, and the transient one after its retry, sent exactly once; nothing else.
    assert sorted(m["to"] for m in stages.sms.sent) == sorted([*GOOD, BUSY])
    assert stages.sms.tries.count(BUSY) == 2  # the 429, then the retry that was accepted
    for nid in good:
        assert stages.sms.tries.count(stages.notification(nid).recipient) == 1  # not re-sent on the retry
        row = stages.notification(nid)
        assert (row.status, row.attempts) == ("sending", 1)
        assert row.provider_id is not None
        assert stages.attempts(nid) == ["accepted"]
    assert stages.sms.sent[0]["callback"] == f"{PUBLIC_URL}/callbacks/twilio/{good[0]}"

    reports = stages.batch_reports()
    assert set(reports) == {*good, too_long, refused, busy}  # the unknown one has nothing to report
    assert all(len(r) == 1 for r in reports.values())  # each reported once
    for nid in good:
        (report,) = reports[nid]
        assert (report["status"], report["source"]) == ("sent", "sms")
        assert report["provider_id"] == stages.notification(nid).provider_id
    # The refused number: failed with Twilio's code, never retried.
    (report,) = reports[refused]
    assert (report["status"], report["error_code"]) == ("failed", 21211)
    assert (stages.notification(refused).error_code, stages.notification(refused).attempts) == (21211, 1)
    assert stages.attempts(refused) == ["refused"]
    # The body over 1,600 characters: failed with its reason, never sent.
    (report,) = reports[too_long]
    assert report["status"] == "failed"
    assert "1700 characters" in report["detail"]
    assert stages.attempts(too_long) == []
    # The transient one: retried later, then sent once.
    (report,) = reports[busy]
    assert report["status"] == "sent"
    assert stages.attempts(busy) == ["retry", "accepted"]
    assert stages.notification(busy).attempts == 2
    # The unknown id: handed on alone and dead-lettered with its reason; the batch went on.
    (dead,) = stages.dead_letters("sms")
    assert (dead.actor_name, dead.args[0]) == ("send_sms", {"notification_id": UNKNOWN})
    assert "unknown notification" in str(dead.options.get("traceback"))


def test_a_transient_failure_comes_back_alone_in_a_delayed_message_of_its_own(stages: Stages) -> None:
    _one_try_per_call(stages)
    stages.sms.busy[BUSY] = 1
    stages.sms.busy_retry_after = 30
    good = _rendered(stages, GOOD[0])
    busy = _rendered(stages, BUSY)
    sms.send_sms_batch(stages.services, {"notification_ids": [good, busy]})

    ((actor, body, delay),) = _delayed(stages)
    assert (actor, body) == ("send_sms_batch", {"notification_ids": [busy]})
    assert 29_000 <= delay <= 31_000  # never sooner than Twilio's Retry-After
    assert stages.notification(busy).status == "pending"  # the claim released: certainly not sent
    assert [m["to"] for m in stages.sms.sent] == [GOOD[0]]
    # One message to history for the batch, with the one outcome it reached.
    assert {nid: [r["status"] for r in found] for nid, found in stages.batch_reports().items()} == {
        good: ["sent"]
    }


def test_a_redelivered_batch_sends_nothing_again_and_reports_again(stages: Stages) -> None:
    ids = [_rendered(stages, n) for n in GOOD]
    _send(stages, *ids)
    _send(stages, *ids)

    assert len(stages.sms.sent) == 3
    assert all(stages.notification(nid).attempts == 1 for nid in ids)
    reports = stages.batch_reports()
    assert {nid: [r["status"] for r in found] for nid, found in reports.items()} == {
        nid: ["sent", "sent"] for nid in ids
    }


def test_claims_left_sending_by_a_batch_cut_short_are_waited_out_not_resent(stages: Stages) -> None:
    ids = [_rendered(stages, n) for n in GOOD]
    with stages.services.transaction() as conn:
        claim_for_sending_many(conn, ids[:2])  # as if a batch had claimed them, then died
    sms.send_sms_batch(stages.services, {"notification_ids": ids})

    assert [m["to"] for m in stages.sms.sent] == [GOOD[2]]  # only the one never claimed
    ((actor, body, delay),) = _delayed(stages)
    assert (actor, sorted(body["notification_ids"])) == ("send_sms_batch", sorted(ids[:2]))
    window = sms._in_flight(stages.services).total_seconds() * 1000
    assert window - 2_000 <= delay <= window + 1_000  # once they can no longer be in flight
    assert [stages.notification(nid).status for nid in ids[:2]] == ["sending", "sending"]


def test_claims_cut_short_long_ago_are_reconciled_and_only_what_twilio_lacks_is_resent(
    stages: Stages,
) -> None:
    ids = [_rendered(stages, n) for n in GOOD]
    with stages.services.transaction() as conn:
        claim_for_sending_many(conn, ids)  # the batch claimed all three, then was killed
        conn.execute(
            update(notifications)
            .where(notifications.c.id.in_(ids))
            .values(attempted_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    # Twilio took the first before the kill; the other two never reached it.
    taken = stages.sms.send(to=GOOD[0], sender="+15005550006", body=TEXT, status_callback=None)
    _send(stages, *ids)

    assert sorted(m["to"] for m in stages.sms.sent) == sorted(GOOD)  # each number once
    assert stages.notification(ids[0]).provider_id == taken.provider_id
    assert stages.attempts(ids[0]) == ["reconciled"]
    for nid in ids[1:]:
        assert stages.attempts(nid) == ["ambiguous", "accepted"]
    reports = stages.batch_reports()
    assert {nid: [r["status"] for r in found] for nid, found in reports.items()} == {
        nid: ["sent"] for nid in ids
    }


def test_each_message_waits_for_its_own_slot_and_a_busy_sender_puts_the_rest_back(
    stages: Stages,
) -> None:
    stages.services.settings = stages.services.settings.model_copy(
        update={"sms_segments_per_second": 2, "sms_rate_max_wait_seconds": 0.6}
    )
    ids = [_rendered(stages, f"+35840111000{n}") for n in range(1, 6)]
    started = datetime.now(UTC)
    sms.send_sms_batch(stages.services, {"notification_ids": ids})

    # Slots at 0 and 0.5 s (within the 0.6 s wait) go now; the rest would wait 1 s or more: they
    # come back when the sender is free, unclaimed and taking no slot.
    sent = [m["to"] for m in stages.sms.sent]
    assert sent == ["+358401110001", "+358401110002"]
    assert (datetime.now(UTC) - started).total_seconds() >= 0.5
    first, second = (stages.notification(nid).attempted_at for nid in ids[:2])
    assert 0.45 <= (second - first).total_seconds() <= 0.55  # each attempt stamped at its slot
    ((actor, body, delay),) = _delayed(stages)
    assert (actor, sorted(body["notification_ids"])) == ("send_sms_batch", sorted(ids[2:]))
    assert delay >= 500  # no sooner than the sender is free
    assert [stages.notification(nid).status for nid in ids[2:]] == ["pending"] * 3


def test_credit_is_reserved_per_notification_and_the_ones_it_does_not_cover_are_skipped(
    stages: Stages,
) -> None:
    with stages.services.transaction() as conn:
        update_org(conn, "acme", {"buys_credit": True, "credit_balance": 2})
    ids = [_rendered(stages, n) for n in GOOD]
    _send(stages, *ids)

    assert len(stages.sms.sent) == 2
    reports = stages.batch_reports()
    assert [reports[nid][0]["status"] for nid in ids] == ["sent", "sent", "skipped"]
    assert reports[ids[2]][0]["detail"] == "insufficient_credit: needs 1, balance 0"
    assert stages.notification(ids[2]).status == "skipped"


def test_a_refusal_gives_its_credit_back_and_21610_opts_the_contact_out(stages: Stages) -> None:
    with stages.services.transaction() as conn:
        update_org(conn, "acme", {"buys_credit": True, "credit_balance": 5})
    stages.sms.refuse[GOOD[1]] = 21610
    ids = [_rendered(stages, n) for n in GOOD]
    _send(stages, *ids)

    from infra.store.organisations import org_settings

    with stages.services.reading() as conn:
        assert org_settings(conn, "acme")["credit_balance"] == 3  # two sent, the refused one refunded
    assert stages.notification(ids[1]).segments == 0
    reports = stages.batch_reports()
    assert (reports[ids[1]][0]["status"], reports[ids[1]][0]["error_code"]) == ("failed", 21610)


def test_a_disconnected_twilio_integration_skips_the_whole_batch(stages: Stages) -> None:
    with stages.services.transaction() as conn:
        mark_disconnected(conn, "twilio", datetime.now(UTC))
    ids = [_rendered(stages, n) for n in GOOD]
    _send(stages, *ids)

    assert stages.sms.sent == []
    reports = stages.batch_reports()
    assert {r[0]["status"] for r in reports.values()} == {"skipped"}
    assert all(r[0]["detail"].startswith("sms_not_connected") for r in reports.values())


def test_a_transient_failure_past_the_deadline_gives_up_with_its_credit_back(stages: Stages) -> None:
    _one_try_per_call(stages)
    stages.services.settings = stages.services.settings.model_copy(
        update={"send_retry_deadline_seconds": 0.000001}
    )
    with stages.services.transaction() as conn:
        update_org(conn, "acme", {"buys_credit": True, "credit_balance": 1})
    stages.sms.busy[BUSY] = 2
    nid = _rendered(stages, BUSY)
    _send(stages, nid)

    assert stages.sms.sent == []
    # The first failure comes back at the deadline (the last try); the second is past it.
    assert stages.attempts(nid) == ["retry", "gave_up"]
    ((report,),) = stages.batch_reports().values()
    assert (report["status"], report["error_code"]) == ("failed", 20429)
    assert report["detail"].startswith("gave_up")
    assert stages.notification(nid).segments == 0  # refunded


def test_an_item_whose_call_cannot_start_within_the_batchs_window_is_released_not_sent(
    stages: Stages, monkeypatch: Any
) -> None:
    """A claimed item still waiting its turn when the start window closes is not sent by that batch
    (its claim could otherwise be taken for one cut short, and reconciled and resent elsewhere)."""
    monkeypatch.setattr(sms, "START_WINDOW_SECONDS", -60.0)  # closed before the first call
    ids = [_rendered(stages, n) for n in GOOD]
    sms.send_sms_batch(stages.services, {"notification_ids": ids})

    assert stages.sms.tries == []
    assert [stages.notification(nid).status for nid in ids] == ["pending"] * 3  # released
    assert all(stages.attempts(nid) == [] for nid in ids)  # no provider call, nothing logged
    ((actor, body, _),) = _delayed(stages)
    assert (actor, sorted(body["notification_ids"])) == ("send_sms_batch", sorted(ids))
    assert stages.emitted("history") == []


def test_in_call_retries_try_again_at_once_log_each_retried_try_and_send_once(stages: Stages) -> None:
    # Three tries per call; the busy number answers 429 (Retry-After 0) twice, then takes it.
    stages.services.settings = stages.services.settings.model_copy(update={"send_call_attempts": 3})
    stages.sms.busy_retry_after = 0.0
    stages.sms.busy[BUSY] = 2
    busy, calm = _rendered(stages, BUSY), _rendered(stages, "+358401110002")
    _send(stages, busy, calm)

    assert stages.sms.tries.count(BUSY) == 3
    assert stages.sms.tries.count("+358401110002") == 1  # the first try took it: no retry machinery
    assert [m["to"] for m in stages.sms.sent].count(BUSY) == 1
    assert stages.attempts(busy) == ["retry", "retry", "accepted"]
    assert stages.attempts(calm) == ["accepted"]
    assert _delayed(stages) == []  # nothing came back to the queue
