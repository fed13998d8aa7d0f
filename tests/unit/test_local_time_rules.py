"""The local-time reminder rules on an injected clock, one test per sentence: time zones
(``workers.rules.local_time``), local reminder hours and DST (``workers.rules.scheduling``),
business days (``workers.rules.business_days``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.factories import invoice_row
from workers.rules.business_days import add_business_days, closed_days, next_business_day
from workers.rules.local_time import UnknownZone, local_instant, recipient_zone, zone, zone_of_number
from workers.rules.quiet_hours import release_at, window_for
from workers.rules.scheduling import Plan, ReminderCalendar, fire, plan, reminder_event

HELSINKI = ZoneInfo("Europe/Helsinki")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
FINLAND = closed_days("FI")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- Time zones --------------------------------------------------------------------------------


def test_an_organisation_zone_is_an_iana_name_and_nothing_else() -> None:
    assert zone("Europe/Helsinki") == HELSINKI
    for bad in (
        "Mars/Olympus",
        "../../etc/passwd",
        "/etc/localtime",
        "",
        "Europe/Helsinki\x00",
        "x" * 10_000,
    ):
        with pytest.raises(UnknownZone):
            zone(bad)


def test_a_contacts_own_zone_comes_first() -> None:
    assert recipient_zone("Asia/Tokyo", "+358401234567", "Europe/Helsinki") == "Asia/Tokyo"


def test_without_its_own_a_contacts_zone_is_the_one_its_number_names() -> None:
    assert zone_of_number("+819012345678") == "Asia/Tokyo"
    assert recipient_zone(None, "+819012345678", "Europe/Helsinki") == "Asia/Tokyo"
    assert recipient_zone(None, "+12125551234", "Europe/Helsinki") == "America/New_York"


def test_a_number_naming_several_zones_or_none_leaves_the_organisations() -> None:
    # Finnish mobiles name Helsinki and Mariehamn; Australian ones eight zones; UK mobiles none.
    for number in ("+358401234567", "+61412345678", "+447700900123", None, "not a number"):
        assert recipient_zone(None, number, "Europe/Helsinki") == "Europe/Helsinki"


def test_a_contact_zone_that_is_not_a_zone_is_ignored() -> None:
    assert recipient_zone("Mars/Olympus", "+819012345678", "Europe/Helsinki") == "Asia/Tokyo"


# --- Local reminder hour and date -----------------------------------------------------------------


def test_reminders_fire_at_the_organisations_local_hour() -> None:
    helsinki = ReminderCalendar(zone=HELSINKI, hour=9)
    assert fire(date(2026, 12, 1), 0, helsinki).at == utc(2026, 12, 1, 7)  # EET, +2
    assert fire(date(2026, 6, 1), 0, helsinki).at == utc(2026, 6, 1, 6)  # EEST, +3


def test_reminders_fire_on_the_right_local_date() -> None:
    # 09:00 in Tokyo on 1 December is still 30 November in UTC; 22:00 in New York is 2 December.
    assert fire(date(2026, 12, 1), 0, ReminderCalendar(zone=TOKYO, hour=9)).at == utc(2026, 12, 1, 0)
    assert fire(date(2026, 12, 1), 0, ReminderCalendar(zone=TOKYO, hour=8)).at == utc(2026, 11, 30, 23)
    new_york = fire(date(2026, 12, 1), 0, ReminderCalendar(zone=NEW_YORK, hour=22))
    assert new_york.at == utc(2026, 12, 2, 3)
    assert new_york.local_date == date(2026, 12, 1)


def test_offsets_count_local_calendar_days_across_a_dst_change() -> None:
    helsinki = ReminderCalendar(zone=HELSINKI, hour=9)
    # Due the Saturday before the spring change: +1 is Sunday (the change), +2 Monday, each at 09:00.
    due = date(2026, 3, 28)
    assert [fire(due, o, helsinki).at for o in (0, 1, 2)] == [
        utc(2026, 3, 28, 7),
        utc(2026, 3, 29, 6),
        utc(2026, 3, 30, 6),
    ]


def test_the_default_calendar_is_utc_at_the_deployments_hour() -> None:
    assert fire(date(2026, 12, 1), -3, ReminderCalendar(hour=9)).at == utc(2026, 11, 28, 9)


# --- DST nights: never skipped, never doubled -----------------------------------------------------


def test_a_local_time_the_spring_change_skips_is_the_moment_the_clocks_jump() -> None:
    # Helsinki, 29 March 2026: 03:00 EET becomes 04:00 EEST at 01:00 UTC.
    assert local_instant(date(2026, 3, 29), time(3), HELSINKI) == utc(2026, 3, 29, 1)
    assert local_instant(date(2026, 3, 29), time(3, 30), HELSINKI) == utc(2026, 3, 29, 1)
    # New York, 8 March 2026: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
    assert local_instant(date(2026, 3, 8), time(2), NEW_YORK) == utc(2026, 3, 8, 7)


def test_a_local_time_the_autumn_change_repeats_is_its_first_occurrence() -> None:
    # Helsinki, 25 October 2026: 04:00 EEST becomes 03:00 EET; 03:00 happens at 00:00 and 01:00 UTC.
    assert local_instant(date(2026, 10, 25), time(3), HELSINKI) == utc(2026, 10, 25, 0)
    # New York, 1 November 2026: 02:00 EDT becomes 01:00 EST; 01:00 happens at 05:00 and 06:00 UTC.
    assert local_instant(date(2026, 11, 1), time(1), NEW_YORK) == utc(2026, 11, 1, 5)


@pytest.mark.parametrize(
    ("tz", "night", "hour"),
    [
        (HELSINKI, date(2026, 3, 29), 3),  # spring: 03:00-04:00 does not exist
        (HELSINKI, date(2026, 10, 25), 3),  # autumn: 03:00-04:00 happens twice
        (NEW_YORK, date(2026, 3, 8), 2),
        (NEW_YORK, date(2026, 11, 1), 1),
        (HELSINKI, date(2026, 3, 29), 9),
        (NEW_YORK, date(2026, 11, 1), 9),
    ],
)
def test_on_dst_nights_each_reminder_goes_exactly_once(tz: ZoneInfo, night: date, hour: int) -> None:
    """Tick every five minutes from two days before the night to two days after: each of the
    offsets around the night is published exactly once, in order."""
    calendar = ReminderCalendar(zone=tz, hour=hour)
    offsets = (-2, -1, 0, 1, 2)
    published: list[int] = []
    decided: set[int] = set()
    now = datetime.combine(night - timedelta(days=3), time(0), tzinfo=UTC)
    while now < datetime.combine(night + timedelta(days=3), time(0), tzinfo=UTC):
        todo = plan(night, paid=False, offsets=offsets, decided=decided, now=now, hour=calendar)
        assert todo.supersede == ()
        if todo.publish is not None:
            published.append(todo.publish)
            decided.add(todo.publish)
        now += timedelta(minutes=5)
    assert published == list(offsets)


# --- Business days --------------------------------------------------------------------------------


def test_a_reminder_on_finnish_independence_day_moves_to_the_next_business_day() -> None:
    # 6 December 2027 is a Monday: the reminder goes on Tuesday the 7th, saying why.
    calendar = ReminderCalendar(zone=HELSINKI, hour=9, closed=FINLAND)
    when = fire(date(2027, 12, 3), 3, calendar)
    assert when.local_date == date(2027, 12, 7)
    assert when.at == utc(2027, 12, 7, 7)
    assert (when.moved_from, when.reason) == (date(2027, 12, 6), "Independence Day")


def test_a_reminder_on_a_weekend_moves_to_monday() -> None:
    calendar = ReminderCalendar(zone=HELSINKI, hour=9, closed=FINLAND)
    when = fire(date(2026, 12, 10), 2, calendar)  # Saturday 12 December
    assert (when.local_date, when.moved_from, when.reason) == (
        date(2026, 12, 14),
        date(2026, 12, 12),
        "Saturday",
    )


def test_a_holiday_on_a_sunday_is_named_by_the_holiday_and_moves_past_it() -> None:
    assert next_business_day(date(2026, 12, 6), FINLAND).reason == "Independence Day"
    assert next_business_day(date(2026, 12, 6), FINLAND).to == date(2026, 12, 7)


def test_a_run_of_holidays_moves_past_all_of_them() -> None:
    # Christmas Eve, Christmas Day, St Stephen's Day (Thu-Sat 2026), then Sunday: Monday the 28th.
    assert next_business_day(date(2026, 12, 24), FINLAND).to == date(2026, 12, 28)


def test_without_business_days_a_reminder_is_never_moved() -> None:
    when = fire(date(2027, 12, 3), 3, ReminderCalendar(zone=HELSINKI, hour=9))
    assert (when.local_date, when.moved_from) == (date(2027, 12, 6), None)


def test_offsets_in_business_days_count_only_business_days() -> None:
    friday = date(2026, 12, 4)  # Monday the 7th is a business day (Independence Day is Sunday)
    assert add_business_days(friday, 1, FINLAND) == date(2026, 12, 7)
    assert add_business_days(friday, 3, FINLAND) == date(2026, 12, 9)
    assert add_business_days(date(2026, 12, 7), -1, FINLAND) == friday
    assert add_business_days(date(2026, 12, 6), 0, FINLAND) == date(2026, 12, 7)
    calendar = ReminderCalendar(zone=HELSINKI, hour=9, closed=FINLAND, business_offsets=frozenset({3}))
    assert fire(friday, 3, calendar).local_date == date(2026, 12, 9)
    assert fire(friday, 3, calendar).moved_from is None  # counted, not moved


def test_two_reminders_moved_onto_one_day_send_only_the_later() -> None:
    # +1 (Saturday) and +3 (Monday) both fall on Monday: the latest goes, the earlier is superseded.
    calendar = ReminderCalendar(zone=HELSINKI, hour=9, closed=FINLAND)
    monday = utc(2026, 12, 14, 8)
    todo = plan(date(2026, 12, 11), paid=False, offsets=(1, 3), decided=(), now=monday, hour=calendar)
    assert todo == Plan(publish=3, supersede=(1,))


def test_the_reminder_event_says_when_and_why_it_was_moved() -> None:
    calendar = ReminderCalendar(zone=HELSINKI, hour=9, closed=FINLAND)
    event = reminder_event(invoice_row(due_date="2027-12-03"), 3, hour=calendar)
    assert event["occurred_at"] == "2027-12-07T07:00:00Z"
    assert event["data"]["reminder"] == {
        "offset_days": 3,
        "moved_from": "2027-12-06",
        "moved_reason": "Independence Day",
    }


# --- A Tokyo contact of a Helsinki organisation ---------------------------------------------------


def test_a_tokyo_contact_of_a_helsinki_organisation_gets_its_sms_in_tokyo_daytime() -> None:
    sms = window_for("sms", "payment_reminder", {})
    contact = zone(recipient_zone(None, "+819012345678", "Europe/Helsinki"))
    # 09:00 in Helsinki is 16:00 in Tokyo: it goes now.
    at_nine = fire(date(2026, 12, 1), 0, ReminderCalendar(zone=HELSINKI, hour=9)).at
    assert release_at(at_nine, sms, contact) is None
    # 20:00 in Helsinki is 03:00 in Tokyo: held until 08:00 Tokyo (23:00 UTC, 01:00 Helsinki).
    at_eight_pm = fire(date(2026, 12, 1), 0, ReminderCalendar(zone=HELSINKI, hour=20)).at
    assert release_at(at_eight_pm, sms, contact) == utc(2026, 12, 1, 23)


# --- The organisation's calendar from its settings ------------------------------------------------


def test_an_organisation_without_settings_uses_the_deployments_zone_and_hour() -> None:
    from producers.scheduler import reminder_calendar

    calendar = reminder_calendar({}, default_zone="Europe/Helsinki", default_hour=10)
    assert (calendar.zone, calendar.hour, calendar.closed) == (HELSINKI, 10, None)


def test_an_organisations_own_zone_hour_and_holidays_win() -> None:
    from producers.scheduler import reminder_calendar

    settings = {"timezone": "Asia/Tokyo", "reminder_hour": 8, "country": "FI", "business_days": True}
    calendar = reminder_calendar(settings, default_zone="UTC", default_hour=9)
    assert (calendar.zone, calendar.hour) == (TOKYO, 8)
    assert calendar.closed is not None
    assert calendar.closed(date(2026, 12, 6)) == "Independence Day"


def test_holidays_apply_only_when_the_organisation_counts_business_days() -> None:
    from producers.scheduler import reminder_calendar

    calendar = reminder_calendar(
        {"country": "FI", "business_days": False}, default_zone="UTC", default_hour=9
    )
    assert calendar.closed is None
