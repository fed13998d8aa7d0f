"""Permanent or transient: decided in one place; every error in the one tree, mapped at the edges."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from twilio.base.exceptions import TwilioRestException

from infra.adapters.sms import classify_twilio_error
from infra.errors import (
    Conflict,
    IntegrationInactive,
    Invalid,
    MalformedMessage,
    NotCancellable,
    NotFound,
    PermanentProviderError,
    Refused,
    TransientProviderError,
)
from infra.retry_policy import is_permanent, retry_when
from producers.api.errors import ANSWERS, answer
from producers.cli.console import EXIT_REFUSED, refusals
from tests.fakes import FakeSms


@pytest.mark.parametrize("code", [21211, 21408, 21610, 21612, 21614, 21635, 30004, 30005, 30006, 30007])
def test_twilio_refusals_that_retrying_cannot_fix_are_permanent(code: int) -> None:
    assert isinstance(
        classify_twilio_error(TwilioRestException(400, "/x", code=code)), PermanentProviderError
    )


@pytest.mark.parametrize(
    ("status", "code"), [(429, 20429), (500, None), (503, None), (400, 30001), (400, 30008)]
)
def test_rate_limits_server_errors_and_queue_overflow_are_transient(status: int, code: int | None) -> None:
    assert isinstance(
        classify_twilio_error(TwilioRestException(status, "/x", code=code)), TransientProviderError
    )


def test_malformed_messages_are_never_retried_and_other_errors_are_until_the_budget_ends() -> None:
    should_retry = retry_when(max_retries=3)
    assert not should_retry(0, MalformedMessage("bad"))
    assert is_permanent(MalformedMessage("bad"))
    assert should_retry(2, ConnectionError("reset"))
    assert not should_retry(3, ConnectionError("reset"))


def test_the_fake_gateway_refuses_like_twilio_and_finds_what_it_sent() -> None:
    fake = FakeSms(refuse={"+15005550001": 21211})
    with pytest.raises(PermanentProviderError):
        fake.send(to="+15005550001", sender="+1", body="x", status_callback=None)
    sent = fake.send(to="+358401234567", sender="+1", body="hello", status_callback=None)
    assert sent.provider_id.startswith("SM")
    assert fake.find_sent(to="+358401234567", body="hello", since=None) == sent.provider_id  # type: ignore[arg-type]


# -- one tree: every exception under HeraldError -------------------------------------------------

RUNTIME = ("schemas", "producers", "workers", "infra")
ROOT = Path(__file__).resolve().parents[2]

#: Run apart (a fresh interpreter), so importing every module leaves this one as it was.
_WALK = """
import importlib, inspect, json, pkgutil
from infra.errors import HeraldError
outside = []
for package in {packages!r}:
    found = importlib.import_module(package)
    names = [package, *(m.name for m in pkgutil.walk_packages(found.__path__, package + "."))]
    for name in names:
        if "migrations" in name:
            continue
        for value in vars(importlib.import_module(name)).values():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == name:
                if not issubclass(value, HeraldError):
                    outside.append(f"{{name}}.{{value.__qualname__}}")
print(json.dumps(sorted(outside)))
"""


def test_every_exception_class_of_the_runtime_packages_derives_from_herald_error() -> None:
    walked = subprocess.run(
        [sys.executable, "-c", _WALK.format(packages=RUNTIME)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(walked.stdout) == []


def _kinds(base: type[Refused]) -> set[type[Refused]]:
    return {base}.union(*(_kinds(sub) for sub in base.__subclasses__()))


#: How the API answers each refused operation (tests/integration assert these statuses and codes).
OPERATION_ANSWERS = [
    (Refused, 422, "refused"),
    (NotFound, 404, "not_found"),
    (Invalid, 422, "invalid"),
    (Conflict, 409, "conflict"),
    (IntegrationInactive, 409, "integration_disconnected"),
    (NotCancellable, 409, "not_cancellable"),
]


def test_operation_errors_know_no_http_and_the_api_edge_maps_every_one() -> None:
    kinds = {kind for kind in _kinds(Refused) if kind.__module__ == "infra.errors"}
    for kind in kinds:
        assert not {"status", "http_status", "code"} & set(vars(kind)), kind
    assert kinds == {kind for kind, _, _ in OPERATION_ANSWERS}
    assert kinds <= set(ANSWERS)


@pytest.mark.parametrize(("kind", "status", "code"), OPERATION_ANSWERS)
def test_the_api_edge_answers_an_operation_error_with_its_status_and_code(
    kind: type[Refused], status: int, code: str
) -> None:
    assert answer(kind("refused")) == (status, code)


@pytest.mark.parametrize(
    "refusal",
    [NotFound("no x"), Invalid("bad", ["a", "b"]), Conflict("moved on"), NotCancellable("submitted")],
)
def test_the_cli_prints_a_refusal_and_exits_1(refusal: Refused) -> None:
    with pytest.raises(typer.Exit) as exited, refusals():
        raise refusal
    assert exited.value.exit_code == EXIT_REFUSED == 1


def test_an_invalid_argument_is_the_clis_usage_error_where_the_command_says_so() -> None:
    with pytest.raises(typer.BadParameter, match="kind 'x'"), refusals(usage=True):
        raise Invalid("kind 'x': unknown")
    with pytest.raises(typer.Exit), refusals(usage=True):
        raise Invalid("template t has 1 problem(s)", ["t line 2: unknown variable"])
