"""Which failures are retried, and how long herald waits: the retry policy's rules."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest
from jinja2.exceptions import SecurityError, UndefinedError
from twilio.base.exceptions import TwilioRestException

from infra.adapters.sms import PERMANENT_CODES, classify_twilio_error, parse_retry_after
from infra.errors import MalformedMessage, PermanentProviderError, TransientProviderError
from infra.retry_policy import (
    in_call_retrying,
    is_permanent,
    is_permanent_render_error,
    retry_in_call,
    retry_when,
)


def _twilio(status: int, code: int | None) -> TwilioRestException:
    return TwilioRestException(status, "/Messages.json", msg="no", code=code)


@pytest.mark.parametrize("code", sorted(PERMANENT_CODES))
def test_each_permanent_twilio_code_is_permanent(code: int) -> None:
    assert isinstance(classify_twilio_error(_twilio(400, code)), PermanentProviderError)


@pytest.mark.parametrize(
    ("status", "code"), [(429, 20429), (500, 20500), (503, None), (400, 30001), (400, 30008)]
)
def test_rate_limits_server_errors_and_queue_codes_are_transient(status: int, code: int | None) -> None:
    assert isinstance(classify_twilio_error(_twilio(status, code)), TransientProviderError)


def test_a_429_keeps_the_providers_retry_after() -> None:
    error = classify_twilio_error(_twilio(429, 20429), retry_after=2.5)
    assert isinstance(error, TransientProviderError)
    assert error.retry_after == 2.5


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 25 Nov 2026 12:00:10 GMT", now) == 10.0
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def test_only_a_certainly_unsent_transient_failure_is_retried_in_call() -> None:
    assert retry_in_call(TransientProviderError("500"), max_wait=5)
    assert not retry_in_call(TransientProviderError("timeout", accepted_unknown=True), max_wait=5)
    assert not retry_in_call(PermanentProviderError("21211"), max_wait=5)
    assert not retry_in_call(TransientProviderError("429", retry_after=60), max_wait=5)
    assert retry_in_call(TransientProviderError("429", retry_after=2), max_wait=5)


def test_in_call_retries_wait_the_retry_after_and_log_each_retry() -> None:
    answers: list[Exception | str] = [
        TransientProviderError("429", retry_after=1.5),
        TransientProviderError("500"),
    ]
    slept: list[float] = []
    logged: list[str] = []

    def call() -> str:
        answer = answers.pop(0) if answers else "SM1"
        if isinstance(answer, Exception):
            raise answer
        return answer

    retrying = in_call_retrying(3, 5.0, lambda exc, wait: logged.append(str(exc)), sleep=slept.append)
    assert retrying(call) == "SM1"
    assert logged == ["429", "500"]
    assert slept[0] == 1.5
    assert 0 < slept[1] <= 2.2


def test_in_call_retries_stop_after_the_attempts_and_reraise_the_last_error() -> None:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        raise TransientProviderError(f"500 #{len(calls)}")

    with pytest.raises(TransientProviderError, match="500 #3"):
        in_call_retrying(3, 5.0, lambda exc, wait: None, sleep=lambda s: None)(call)
    assert len(calls) == 3


def test_an_ambiguous_failure_is_never_retried_in_call() -> None:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        raise TransientProviderError("read timeout", accepted_unknown=True)

    with pytest.raises(TransientProviderError):
        in_call_retrying(3, 5.0, lambda exc, wait: None, sleep=lambda s: None)(call)
    assert calls == [1]


def test_message_level_retries_honour_dramatiq_retry_and_stop_permanent_errors() -> None:
    should = retry_when(max_retries=2)
    assert should(50, dramatiq.Retry("later", delay=1000))  # the sender keeps its own deadline
    assert should(1, TransientProviderError("500"))
    assert not should(2, TransientProviderError("500"))
    assert not should(0, MalformedMessage("bad"))
    assert not should(0, PermanentProviderError("21211"))


def test_a_database_that_is_down_is_transient() -> None:
    """psycopg's OperationalError (server gone, refused, starting up), as SQLAlchemy raises it."""
    import psycopg
    from sqlalchemy.exc import OperationalError

    down = OperationalError("SELECT 1", {}, psycopg.OperationalError("the database system is starting up"))
    assert not is_permanent(down)
    assert retry_when(max_retries=10)(9, down)
    assert not retry_when(max_retries=10)(10, down)  # within the retry budget, like any transient error


def test_retry_after_never_outlives_the_deadline() -> None:
    from workers.rules.delivery import retry_plan

    start = datetime(2026, 11, 25, tzinfo=UTC)
    plan = retry_plan(
        first_attempt=start,
        now=start + timedelta(seconds=50),
        deadline=timedelta(seconds=60),
        backoff=1,
        retry_after=30,
    )
    assert plan == 10


@pytest.mark.parametrize(
    "exc",
    [
        decimal.InvalidOperation([decimal.InvalidOperation]),
        UndefinedError("'x' is undefined"),
        SecurityError("unsafe"),
        TypeError("unsupported operand type(s) for +: 'str' and 'int'"),
        ValueError("Exceeds the limit (4300 digits) for integer string conversion"),
        ZeroDivisionError("division by zero"),
        MalformedMessage("bad"),
    ],
)
def test_a_rendering_error_is_permanent_retrying_renders_the_same_again(exc: BaseException) -> None:
    """Rendering is pure: the same event and templates fail the same way on every try."""
    assert is_permanent_render_error(exc)


def test_a_database_or_broker_failure_while_rendering_is_still_transient() -> None:
    import psycopg
    from sqlalchemy.exc import OperationalError

    down = OperationalError("SELECT 1", {}, psycopg.OperationalError("server closed the connection"))
    assert not is_permanent_render_error(down)
    assert not is_permanent_render_error(ConnectionResetError())
    assert not is_permanent_render_error(MemoryError())
