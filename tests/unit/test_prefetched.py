"""What a worker prefetched, taken for a batch (``infra.middleware.prefetched``): taken in order,
the rest left where it was, acked on its consumer once the batch is done, put back untouched if it
fails, and the work queue's task count kept as dramatiq keeps it."""

from __future__ import annotations

from dataclasses import dataclass, field
from queue import PriorityQueue
from typing import Any

from dramatiq.worker import _WorkQueueItem

from infra.middleware.prefetched import Prefetched


@dataclass
class _Message:
    name: str
    queue_name: str = "herald.route"


@dataclass
class _Consumer:
    acked: list[str] = field(default_factory=list)

    def post_process_message(self, message: _Message) -> None:
        self.acked.append(message.name)


@dataclass
class _Worker:
    queue_prefetch: int = 8
    work_queue: PriorityQueue[Any] = field(default_factory=PriorityQueue)
    consumers: dict[str, _Consumer] = field(default_factory=lambda: {"herald.route": _Consumer()})


def _booted(*names: str, prefetch: int = 32) -> tuple[Prefetched, _Worker]:
    buffer, worker = Prefetched(prefetch=prefetch), _Worker()
    buffer.before_worker_boot(None, worker)
    for name in names:
        worker.work_queue.put(_WorkQueueItem(0, _Message(name)))  # type: ignore[arg-type]
    return buffer, worker


def _waiting(worker: _Worker) -> list[str]:
    found = []
    while not worker.work_queue.empty():
        found.append(worker.work_queue.get_nowait().message.name)
        worker.work_queue.task_done()
    return found


def _one(message: _Message) -> list[str] | None:
    return None if message.name.startswith("other") else [message.name]


def test_the_worker_prefetches_at_least_a_batch_worth_and_never_less_than_dramatiq_would() -> None:
    assert _booted(prefetch=32)[1].queue_prefetch == 32
    assert _booted(prefetch=4)[1].queue_prefetch == 8  # dramatiq's two a thread, when more


def test_messages_of_the_kind_are_taken_oldest_first_up_to_the_room_and_the_others_stay_in_order() -> None:
    buffer, worker = _booted("a", "other1", "b", "c", "other2", "d")
    taken = buffer.take(_one, 3, len)
    assert [one.value for one in taken] == [["a"], ["b"], ["c"]]
    assert worker.work_queue.unfinished_tasks == 6  # the three taken are still being worked on
    assert _waiting(worker) == ["other1", "other2", "d"]


def test_a_message_with_more_items_than_the_room_left_is_left_for_another_thread() -> None:
    buffer, worker = _booted("a", "b")
    taken = buffer.take(lambda m: [m.name] * (5 if m.name == "a" else 1), 3, len)
    assert [one.value for one in taken] == [["b"]]
    assert _waiting(worker) == ["a"]


def test_a_done_batch_acks_each_message_on_its_consumer_and_ends_its_task() -> None:
    buffer, worker = _booted("a", "b")
    taken = buffer.take(_one, 10, len)
    buffer.settle(taken)
    assert worker.consumers["herald.route"].acked == ["a", "b"]
    assert worker.work_queue.unfinished_tasks == 0


def test_a_failed_batch_puts_each_message_back_untouched_and_acks_none() -> None:
    buffer, worker = _booted("a", "b")
    buffer.give_back(buffer.take(_one, 10, len))
    assert worker.consumers["herald.route"].acked == []
    assert worker.work_queue.unfinished_tasks == 2
    assert _waiting(worker) == ["a", "b"]


def test_nothing_is_taken_where_no_worker_runs_or_there_is_no_room() -> None:
    assert Prefetched().take(_one, 10, len) == []
    buffer, worker = _booted("a")
    assert buffer.take(_one, 0, len) == []
    buffer.before_worker_shutdown(None, worker)  # stopping: the rest is left for RabbitMQ
    assert buffer.take(_one, 10, len) == []
