"""Where a notification's next try starts (workers/sms_routing.py's ``failed_at``)."""

from __future__ import annotations

from tests.factories import notification_row
from workers.sms_routing import failed_at


def test_a_notification_never_tried_starts_at_the_top_of_the_list() -> None:
    assert failed_at(notification_row(attempts=0)) is None


def test_one_tried_before_with_no_provider_recorded_was_tried_at_twilio() -> None:
    assert failed_at(notification_row(attempts=1, status="pending")) == "twilio"


def test_one_tried_at_another_provider_starts_after_it() -> None:
    assert failed_at(notification_row(attempts=2, status="pending", provider="backup")) == "backup"


def test_one_the_provider_took_is_not_tried_again_anywhere() -> None:
    assert failed_at(notification_row(attempts=1, status="sending", provider_id="SM1")) is None


def test_the_in_flight_window_counts_the_slowest_providers_call() -> None:
    from infra.settings import Settings
    from workers.sms_routing import call_timeout

    both = {"vonage_api_key": "key", "vonage_api_secret": "secret"}
    assert call_timeout(Settings(twilio_timeout_seconds=2, vonage_timeout_seconds=10, **both)) == 10  # type: ignore[arg-type]
    assert call_timeout(Settings(twilio_timeout_seconds=20, vonage_timeout_seconds=3, **both)) == 20  # type: ignore[arg-type]
    # Vonage not configured: Twilio's alone.
    assert call_timeout(Settings(twilio_timeout_seconds=2, vonage_timeout_seconds=10)) == 2  # type: ignore[call-arg]
