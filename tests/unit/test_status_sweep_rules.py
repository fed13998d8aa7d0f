"""The status sweep's selection rule and verdicts (``workers.rules.sweep``), and the fake's look-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.errors import PermanentProviderError
from schemas.notifications import Status
from schemas.rows import NotificationRow
from tests.factories import notification_row
from tests.fakes import FakeSms
from workers.rules.sweep import SweepWindow, due_for_sweep, sweep_verdict

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = SweepWindow.at(
    NOW, after=timedelta(minutes=10), every=timedelta(minutes=30), max_age=timedelta(hours=72)
)


def _row(**over: Any) -> NotificationRow:
    row: dict[str, Any] = {
        "channel": "sms",
        "status": "sent",
        "provider_id": "SM1",
        "updated_at": NOW - timedelta(minutes=11),
        "swept_at": None,
    }
    return notification_row(**{**row, **over})


def test_an_sms_sent_longer_than_the_threshold_and_never_asked_is_due() -> None:
    assert due_for_sweep(_row(), WINDOW)


def test_one_sent_more_recently_than_the_threshold_is_not_due_yet() -> None:
    assert not due_for_sweep(_row(updated_at=NOW - timedelta(minutes=9)), WINDOW)
    assert due_for_sweep(_row(updated_at=NOW - timedelta(minutes=10)), WINDOW)  # exactly: due


@pytest.mark.parametrize("status", ["pending", "sending", "delivered", "undelivered", "failed", "skipped"])
def test_only_sent_is_swept(status: str) -> None:
    assert not due_for_sweep(_row(status=status), WINDOW)


def test_without_a_provider_id_there_is_nothing_to_ask_about() -> None:
    assert not due_for_sweep(_row(provider_id=None), WINDOW)
    assert not due_for_sweep(_row(provider_id=""), WINDOW)


def test_email_is_never_swept() -> None:
    assert not due_for_sweep(_row(channel="email"), WINDOW)


def test_asked_within_the_interval_waits_and_asked_before_it_is_due_again() -> None:
    assert not due_for_sweep(_row(swept_at=NOW - timedelta(minutes=29)), WINDOW)
    assert not due_for_sweep(_row(swept_at=NOW - timedelta(minutes=30)), WINDOW)  # strictly more
    assert due_for_sweep(_row(swept_at=NOW - timedelta(minutes=31)), WINDOW)


def test_asked_at_this_very_instant_is_not_due_even_with_a_zero_interval() -> None:
    window = SweepWindow.at(NOW, after=timedelta(0), every=timedelta(0), max_age=timedelta(hours=72))
    assert due_for_sweep(_row(updated_at=NOW), window)
    assert not due_for_sweep(_row(updated_at=NOW, swept_at=NOW), window)
    assert due_for_sweep(_row(updated_at=NOW, swept_at=NOW - timedelta(seconds=1)), window)


def test_a_carrier_that_never_reports_is_not_asked_forever() -> None:
    assert due_for_sweep(_row(updated_at=NOW - timedelta(hours=71)), WINDOW)
    assert not due_for_sweep(_row(updated_at=NOW - timedelta(hours=73)), WINDOW)


def test_naive_datetimes_from_sqlite_are_read_as_utc() -> None:
    naive = (NOW - timedelta(minutes=11)).replace(tzinfo=None)
    assert due_for_sweep(_row(updated_at=naive), WINDOW)
    assert not due_for_sweep(_row(updated_at=naive, swept_at=NOW.replace(tzinfo=None)), WINDOW)


@pytest.mark.parametrize(
    ("twilio", "status"),
    [
        ("delivered", Status.DELIVERED),
        ("undelivered", Status.UNDELIVERED),
        ("failed", Status.FAILED),
        ("Delivered", Status.DELIVERED),
    ],
)
def test_twilios_final_statuses_are_reported(twilio: str, status: Status) -> None:
    assert sweep_verdict(twilio) == status


@pytest.mark.parametrize("twilio", ["queued", "accepted", "scheduled", "sending", "sent", "canceled", ""])
def test_a_provider_that_has_not_moved_on_reports_nothing(twilio: str) -> None:
    assert sweep_verdict(twilio) is None


def test_the_fake_gateway_answers_what_the_test_set_and_refuses_unknown_ids() -> None:
    fake = FakeSms()
    sid = fake.send(to="+358401234567", sender="+15005550006", body="hi", status_callback=None).provider_id
    assert fake.fetch_status(sid) == ("sent", None)
    fake.statuses[sid] = ("undelivered", 30003)
    assert fake.fetch_status(sid) == ("undelivered", 30003)
    with pytest.raises(PermanentProviderError) as refused:
        fake.fetch_status("SM" + "0" * 32)
    assert refused.value.code == 20404
