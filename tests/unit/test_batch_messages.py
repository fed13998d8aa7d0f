"""Batch stage messages (issue 15): the registry, their bounds, cutting a list into messages, and
the pure helpers the batch store functions stand on (rounds of independent items, paced slots)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from infra.settings import Settings
from infra.store.batches import in_chunks, rounds, unique
from infra.store.rate_limit import rate_slot, rate_slots
from schemas.messages import (
    MAX_BATCH_ITEMS,
    REGISTRY,
    BatchMessage,
    DeliveryStatusesReported,
    DeliveryStatusReported,
    EmailRendered,
    EmailsRendered,
    EventPublished,
    EventsPublished,
    NotificationDecided,
    NotificationRendered,
    NotificationsDecided,
    NotificationsRendered,
    StatusReport,
    chunks,
)
from schemas.notifications import Status
from tests.factories import invoice_created

BATCHES: dict[type[BatchMessage], type] = {
    EventsPublished: EventPublished,
    NotificationsDecided: NotificationDecided,
    NotificationsRendered: NotificationRendered,
    EmailsRendered: EmailRendered,
    DeliveryStatusesReported: DeliveryStatusReported,
}


def _report(nid: str = "ntf_1a", **fields: Any) -> StatusReport:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return StatusReport(notification_id=nid, status=Status.SENT, source="sms", occurred_at=at, **fields)


def _item(batch: type[BatchMessage], n: int) -> Any:
    if batch is EventsPublished:
        return invoice_created(f"evt_{n}")
    if batch is DeliveryStatusesReported:
        return _report(f"ntf_{n:x}")
    return f"ntf_{n:x}"


def test_every_batch_type_is_in_the_registry_beside_its_single_item_type() -> None:
    for batch, single in BATCHES.items():
        assert REGISTRY[batch.name] is batch
        assert REGISTRY[single.name] is single  # kept: in-flight messages and single producers
        assert batch.name != single.name
        assert batch.name.endswith("ed")  # past tense, like every name


@pytest.mark.parametrize("batch", list(BATCHES))
def test_a_batch_goes_to_its_single_item_types_queue_under_an_actor_of_its_own(
    batch: type[BatchMessage],
) -> None:
    single = BATCHES[batch]
    assert batch.stage == single.stage  # queue names are public contract: no new queues
    assert batch.actor != single.actor
    actors = [m.actor for m in REGISTRY.values()]
    assert actors.count(batch.actor) == 1


@pytest.mark.parametrize("batch", list(BATCHES))
def test_a_batch_holds_one_to_the_maximum_items_and_no_more(batch: type[BatchMessage]) -> None:
    field = batch.items_field
    with pytest.raises(ValidationError):
        batch.model_validate({field: []})
    full = batch.model_validate({field: [_item(batch, n) for n in range(MAX_BATCH_ITEMS)]})
    assert len(full.batch_items()) == MAX_BATCH_ITEMS
    with pytest.raises(ValidationError):
        batch.model_validate({field: [_item(batch, n) for n in range(MAX_BATCH_ITEMS + 1)]})


@pytest.mark.parametrize("batch", list(BATCHES))
def test_a_batch_body_is_json_primitives_and_decodes_to_the_same_message(batch: type[BatchMessage]) -> None:
    import json

    message = batch.model_validate({batch.items_field: [_item(batch, n) for n in range(3)]})
    body = message.body()
    assert json.loads(json.dumps(body)) == body
    assert batch.model_validate(body) == message


@pytest.mark.parametrize("batch", [NotificationsDecided, NotificationsRendered, EmailsRendered])
def test_a_notification_batch_refuses_an_id_a_single_message_would_refuse(batch: type[BatchMessage]) -> None:
    for bad in ("evt_1", "ntf_XYZ", "ntf_" + "a" * 37, "ntf_1\n"):
        with pytest.raises(ValidationError):
            batch.model_validate({"notification_ids": ["ntf_1", bad]})
        with pytest.raises(ValidationError):
            BATCHES[batch].model_validate({"notification_id": bad})


def test_a_batch_refuses_fields_it_does_not_have() -> None:
    with pytest.raises(ValidationError):
        NotificationsDecided.model_validate({"notification_ids": ["ntf_1"], "extra": 1})
    with pytest.raises(ValidationError):
        DeliveryStatusesReported.model_validate(
            {"reports": [{**_report().model_dump(mode="json"), "extra": 1}]}
        )


def test_a_status_report_in_a_batch_has_exactly_the_fields_of_the_single_report() -> None:
    assert StatusReport.model_fields.keys() == DeliveryStatusReported.model_fields.keys()
    single = DeliveryStatusReported(
        notification_id="ntf_1",
        status=Status.FAILED,
        source="render",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        error_code=30007,
        detail="template: x",
    )
    batch = DeliveryStatusesReported(reports=[single.report()])
    assert batch.body() == {"reports": [single.body()]}
    with pytest.raises(ValidationError):  # a naive time is refused in a batch as alone
        StatusReport(
            notification_id="ntf_1", status=Status.SENT, source="sms", occurred_at=datetime(2026, 1, 1)
        )


def test_the_single_item_messages_are_unchanged() -> None:
    assert (DeliveryStatusReported.name, DeliveryStatusReported.stage, DeliveryStatusReported.actor) == (
        "delivery.status_reported",
        "history",
        "record_status",
    )
    body = {"notification_id": "ntf_1", "status": "sent", "source": "sms"}
    body["occurred_at"] = "2026-01-01T00:00:00Z"
    assert DeliveryStatusReported.model_validate(body).body() == body


def test_an_event_batch_carries_each_envelope_as_is_so_a_bad_one_fails_alone_at_the_stage() -> None:
    good, broken = invoice_created("evt_1"), {"type": "invoice.created", "event_id": "evt_2"}
    message = EventsPublished(events=[good, broken])
    assert message.batch_items() == [good, broken]


@given(st.lists(st.integers(), max_size=300), st.integers(min_value=1, max_value=MAX_BATCH_ITEMS))
def test_chunks_keep_every_item_in_order_in_lists_of_at_most_the_size(items: list[int], size: int) -> None:
    cut = chunks(items, size)
    assert [i for chunk in cut for i in chunk] == items
    assert all(1 <= len(chunk) <= size for chunk in cut)
    assert len(cut) == -(-len(items) // size)


@pytest.mark.parametrize("size", [0, -1, MAX_BATCH_ITEMS + 1])
def test_chunks_refuse_a_size_a_batch_cannot_have(size: int) -> None:
    with pytest.raises(ValueError, match="a batch holds"):
        chunks([1], size)


def test_chunked_makes_messages_of_at_most_the_stage_batch_size() -> None:
    ids = [f"ntf_{n:x}" for n in range(250)]
    messages = NotificationsDecided.chunked(ids, 100)
    assert [len(m.notification_ids) for m in messages] == [100, 100, 50]
    assert [i for m in messages for i in m.notification_ids] == ids
    assert NotificationsDecided.chunked([], 100) == []
    reports = DeliveryStatusesReported.chunked([_report()] * 3, 2)
    assert [len(m.reports) for m in reports] == [2, 1]


def test_the_stage_batch_size_setting_is_bounded_by_what_a_message_may_carry() -> None:
    assert Settings(stage_batch_size=MAX_BATCH_ITEMS).batch_size == MAX_BATCH_ITEMS
    for bad in (0, MAX_BATCH_ITEMS + 1):
        with pytest.raises(ValidationError):
            Settings(stage_batch_size=bad)


@pytest.mark.parametrize(
    ("database_url", "size"),
    [("sqlite:///herald.db", 200), ("postgresql+psycopg://h@db/herald", 100)],
    ids=["sqlite: one writer, larger turns", "postgresql: four threads, each with a batch"],
)
def test_an_unset_stage_batch_size_is_the_databases(database_url: str, size: int) -> None:
    assert Settings(database_url=SecretStr(database_url), stage_batch_size=None).batch_size == size
    assert Settings(database_url=SecretStr(database_url), stage_batch_size=7).batch_size == 7


def test_in_chunks_and_unique() -> None:
    assert [list(c) for c in in_chunks(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]
    assert list(in_chunks([], 2)) == []
    assert unique([3, 1, 3, 2, 1]) == [3, 1, 2]


def test_items_that_share_nothing_are_one_round() -> None:
    assert rounds([["a"], ["b"], ["c"]]) == [[0, 1, 2]]
    assert rounds([]) == []


def test_an_item_sharing_a_key_with_an_earlier_one_goes_to_a_later_round() -> None:
    # A payment and a reminder of invoice I1, and another invoice between them.
    assert rounds([["I1"], ["I2"], ["I1"], ["I1", "I3"], ["I3"]]) == [[0, 1], [2], [3], [4]]
    assert rounds([["e1", "I1"], ["e2", "I2"], ["e1", "I1"]]) == [[0, 1], [2]]


@given(st.lists(st.lists(st.integers(0, 6), max_size=3), max_size=30))
def test_rounds_hold_every_item_once_and_keep_the_order_of_items_that_share_a_key(
    keys: list[list[int]],
) -> None:
    placed = rounds(keys)
    assert sorted(i for r in placed for i in r) == list(range(len(keys)))
    round_of = {i: n for n, r in enumerate(placed) for i in r}
    for r in placed:
        assert r == sorted(r)
        seen: set[int] = set()
        for i in r:
            assert not seen & set(keys[i])  # nothing shared inside a round
            seen |= set(keys[i])
    for i in range(len(keys)):
        for j in range(i):
            if set(keys[i]) & set(keys[j]):
                assert round_of[j] < round_of[i]


def test_slots_for_several_messages_are_the_slots_of_each_one_after_another() -> None:
    waits, free = rate_slots(None, now=100.0, costs=[1.0, 3.0, 1.0], max_wait=10.0)
    assert waits == [0.0, 1.0, 4.0]
    assert free == 105.0


def test_a_message_past_the_longest_wait_takes_no_slot_and_neither_do_those_after_it() -> None:
    waits, free = rate_slots(103.0, now=100.0, costs=[1.0, 1.0, 1.0], max_wait=3.5)
    assert waits == [3.0, 4.0, 4.0]
    assert free == 104.0
    assert rate_slots(50.0, now=100.0, costs=[], max_wait=1.0) == ([], 50.0)


@given(
    st.one_of(st.none(), st.floats(0, 200)),
    st.lists(st.floats(0, 5), max_size=20),
    st.floats(0, 20),
)
def test_rate_slots_agree_with_rate_slot_taken_one_at_a_time(
    next_free: float | None, costs: list[float], max_wait: float
) -> None:
    now = 100.0
    expected: list[float] = []
    free = next_free
    for cost in costs:
        start, after = rate_slot(free, now, cost)
        expected.append(start - now)
        if start - now <= max_wait:
            free = after
    assert rate_slots(next_free, now, costs, max_wait) == (expected, free)
