"""What a sender does with a notification: never twice, never blindly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.notifications import Status, can_move
from schemas.rows import NotificationRow
from tests.factories import notification_row
from workers.rules.delivery import Step, come_back_groups, next_step

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
IN_FLIGHT = timedelta(seconds=25)


def row(status: Status, **kw: Any) -> NotificationRow:
    return notification_row(status=status, **kw)


def test_a_pending_notification_is_sent() -> None:
    assert next_step(row(Status.PENDING), NOW, IN_FLIGHT) == Step.SEND


@pytest.mark.parametrize(
    "status", [Status.SENT, Status.DELIVERED, Status.SKIPPED, Status.FAILED, Status.UNDELIVERED]
)
def test_a_notification_past_sending_is_left_alone(status: Status) -> None:
    assert next_step(row(status, provider_id="SM1"), NOW, IN_FLIGHT) == Step.NOTHING


def test_an_attempt_the_provider_accepted_is_only_reported_again_never_resent() -> None:
    assert next_step(row(Status.SENDING, provider_id="SM1"), NOW, IN_FLIGHT) == Step.REPORT_SENT


def test_an_attempt_the_provider_refused_is_only_reported_again() -> None:
    assert next_step(row(Status.SENDING, error_code=21211), NOW, IN_FLIGHT) == Step.REPORT_FAILED


def test_an_attempt_still_in_flight_elsewhere_is_waited_for() -> None:
    attempted = NOW - timedelta(seconds=3)
    assert next_step(row(Status.SENDING, attempted_at=attempted), NOW, IN_FLIGHT) == Step.WAIT


def test_an_attempt_cut_short_by_a_crash_is_reconciled_with_the_provider_first() -> None:
    attempted = (NOW - timedelta(minutes=5)).replace(tzinfo=None)  # as SQLite returns it
    assert next_step(row(Status.SENDING, attempted_at=attempted), NOW, IN_FLIGHT) == Step.RECONCILE


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        (Status.PENDING, Status.SENDING, True),
        (Status.SENDING, Status.SENT, True),
        (Status.SENT, Status.DELIVERED, True),
        (Status.SENDING, Status.FAILED, True),
        (Status.SENT, Status.UNDELIVERED, True),
        (Status.DELIVERED, Status.SENT, False),  # a late 'sent' after 'delivered' changes nothing
        (Status.SENT, Status.SENDING, False),
        (Status.FAILED, Status.DELIVERED, False),
        (Status.SKIPPED, Status.SENT, False),
        (Status.SENT, Status.SENT, False),
    ],
)
def test_a_status_only_moves_forward(current: Status, new: Status, allowed: bool) -> None:
    assert can_move(current, new) is allowed


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    from workers.rules.delivery import backoff_seconds

    assert backoff_seconds(0, 0.5, 300, rand=0.999) < 0.5 + 1e-9
    assert backoff_seconds(4, 0.5, 300, rand=0.999) == pytest.approx(0.5 * 16 * 0.999)
    assert backoff_seconds(30, 0.5, 300, rand=0.999) == pytest.approx(300 * 0.999)
    assert backoff_seconds(4, 0.5, 300, rand=0.0) == 0.5  # never below the floor


def test_a_retry_waits_at_least_the_providers_retry_after() -> None:
    from workers.rules.delivery import retry_plan

    start = datetime(2026, 11, 25, tzinfo=UTC)
    wait = retry_plan(first_attempt=start, now=start, deadline=timedelta(hours=1), backoff=0.5, retry_after=7)
    assert wait == 7


def test_past_the_deadline_the_sender_gives_up() -> None:
    from workers.rules.delivery import retry_plan

    start = datetime(2026, 11, 25, tzinfo=UTC)
    late = start + timedelta(hours=1, seconds=1)
    assert (
        retry_plan(first_attempt=start, now=late, deadline=timedelta(hours=1), backoff=1, retry_after=None)
        is None
    )


def test_a_live_attempt_is_waited_out_until_it_can_no_longer_be_in_flight() -> None:
    from workers.rules.delivery import wait_out

    start = datetime(2026, 11, 25, 12, 0, 0)  # naive, as SQLite hands it back
    now = datetime(2026, 11, 25, 12, 0, 4, tzinfo=UTC)
    assert wait_out(start, now, timedelta(seconds=10)) == 6.0
    assert wait_out(start, now, timedelta(seconds=3)) == 0.0


# --- coming back to a batch's notifications (issue 15) ---


def test_notifications_to_come_back_to_at_about_the_same_time_go_in_one_message_at_the_latest() -> None:
    groups = come_back_groups([("a", 10.0, False), ("b", 12.0, False), ("c", 11.0, False)])
    assert groups == [(12.0, ["a", "c", "b"])]  # none sooner than its own delay, none much later


def test_delays_far_apart_go_in_messages_of_their_own() -> None:
    groups = come_back_groups([("a", 0.1, False), ("b", 0.4, False), ("c", 5.0, False), ("d", 60.0, False)])
    assert groups == [(0.4, ["a", "b"]), (5.0, ["c"]), (60.0, ["d"])]


def test_a_last_try_placed_at_the_deadline_is_never_pushed_past_it() -> None:
    groups = come_back_groups([("last", 10.0, True), ("other", 10.5, False), ("same", 10.0, False)])
    assert groups == [(10.0, ["last", "same"]), (10.5, ["other"])]


def test_a_notification_named_twice_comes_back_once_at_its_longest_delay() -> None:
    assert come_back_groups([("a", 1.0, False), ("a", 30.0, False)]) == [(30.0, ["a"])]
    assert come_back_groups([]) == []
