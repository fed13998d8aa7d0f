"""The Direct Debit adapter: error classification with the official client's exceptions, the
idempotency conflict resolving to the existing payment, and the fake."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import requests
from gocardless_pro import errors

from infra.adapters.gocardless import GoCardlessDirectDebit, classify
from infra.errors import PermanentProviderError, TransientProviderError
from infra.retry_policy import is_permanent
from schemas.directory import PayerDetails
from tests.fakes import FakeDirectDebit


def _api(cls: type[errors.ApiError], code: int, type_: str, reason: str, **extra: Any) -> errors.ApiError:
    return cls(
        {
            "type": type_,
            "code": code,
            "message": "refused",
            "errors": [{"reason": reason, "message": "refused", **extra}],
        }
    )


@pytest.mark.parametrize(
    "exc",
    [
        _api(errors.ValidationFailedError, 422, "validation_failed", "invalid", field="amount"),
        _api(errors.InvalidStateError, 422, "invalid_state", "mandate_is_inactive"),
        _api(errors.InvalidApiUsageError, 404, "invalid_api_usage", "resource_not_found"),
        _api(errors.AuthenticationError, 401, "invalid_api_usage", "access_token_not_found"),
        _api(errors.PermissionsError, 403, "invalid_api_usage", "insufficient_permissions"),
        errors.MalformedResponseError("bad", "<html>", 400),
    ],
)
def test_refusals_are_permanent_and_never_retried(exc: BaseException) -> None:
    classified = classify(exc)
    assert isinstance(classified, PermanentProviderError)
    assert is_permanent(classified)


@pytest.mark.parametrize(
    "exc",
    [
        _api(errors.GoCardlessInternalError, 500, "gocardless", "internal_server_error"),
        _api(errors.RateLimitError, 429, "invalid_api_usage", "rate_limit_exceeded"),
        _api(errors.ApiError, 503, "gocardless", "service_unavailable"),
        errors.MalformedResponseError("bad", "<html>502</html>", 502),
        requests.Timeout("read timed out"),
        requests.ConnectionError("refused"),
    ],
)
def test_5xx_rate_limits_timeouts_and_connection_errors_are_transient(exc: BaseException) -> None:
    classified = classify(exc)
    assert isinstance(classified, TransientProviderError)
    assert not is_permanent(classified)


def test_the_refusal_names_gocardless_reason() -> None:
    classified = classify(_api(errors.InvalidStateError, 422, "invalid_state", "mandate_is_inactive"))
    assert "mandate_is_inactive" in str(classified)
    assert classified.status == 422


def _payment(pid: str, amount: int = 123450) -> SimpleNamespace:
    return SimpleNamespace(
        id=pid,
        amount=amount,
        currency="EUR",
        status="pending_submission",
        charge_date=None,
        created_at="2026-11-23T10:00:00.000Z",
        links=SimpleNamespace(mandate="MD1"),
    )


class _Payments:
    def __init__(self, conflict_with: str | None = None, fail: BaseException | None = None) -> None:
        self.created: list[dict[str, Any]] = []
        self.fetched: list[str] = []
        self.conflict_with = conflict_with
        self.fail = fail

    def create(self, params: dict[str, Any], headers: dict[str, str]) -> SimpleNamespace:
        self.created.append({"params": params, "headers": headers})
        if self.fail is not None:
            raise self.fail
        if self.conflict_with:
            raise errors.IdempotentCreationConflictError(
                {
                    "type": "invalid_state",
                    "code": 409,
                    "message": "conflict",
                    "errors": [
                        {
                            "reason": "idempotent_creation_conflict",
                            "message": "conflict",
                            "links": {"conflicting_resource_id": self.conflict_with},
                        }
                    ],
                }
            )
        return _payment("PM_NEW")

    def get(self, identity: str) -> SimpleNamespace:
        self.fetched.append(identity)
        return _payment(identity)


def _create(adapter: GoCardlessDirectDebit) -> Any:
    return adapter.create_payment(
        amount_minor=123450,
        currency="EUR",
        mandate_id="MD1",
        idempotency_key="acme:INV-1",
        metadata={"herald_invoice_id": "INV-1"},
        description="Invoice 1001",
    )


def test_a_payment_is_created_with_the_idempotency_key_and_metadata() -> None:
    payments = _Payments()
    ref = _create(GoCardlessDirectDebit(SimpleNamespace(payments=payments)))  # type: ignore[arg-type]
    (call,) = payments.created
    assert call["headers"] == {"Idempotency-Key": "acme:INV-1"}
    assert call["params"]["links"] == {"mandate": "MD1"}
    assert call["params"]["amount"] == 123450
    assert (ref.id, ref.existing) == ("PM_NEW", False)


def test_an_idempotency_conflict_returns_the_existing_payment_and_creates_no_second() -> None:
    payments = _Payments(conflict_with="PM_OLD")
    ref = _create(GoCardlessDirectDebit(SimpleNamespace(payments=payments)))  # type: ignore[arg-type]
    assert (ref.id, ref.existing) == ("PM_OLD", True)
    assert len(payments.created) == 1
    assert payments.fetched == ["PM_OLD"]


def test_the_adapter_raises_herald_errors_only() -> None:
    inactive = _api(errors.InvalidStateError, 422, "invalid_state", "mandate_is_inactive")
    adapter = GoCardlessDirectDebit(SimpleNamespace(payments=_Payments(fail=inactive)))  # type: ignore[arg-type]
    with pytest.raises(PermanentProviderError):
        _create(adapter)
    down = GoCardlessDirectDebit(SimpleNamespace(payments=_Payments(fail=requests.ConnectionError())))  # type: ignore[arg-type]
    with pytest.raises(TransientProviderError):
        _create(down)


def test_the_fake_keeps_idempotency_keys_like_gocardless() -> None:
    fake = FakeDirectDebit()
    first = fake.create_payment(
        amount_minor=1, currency="EUR", mandate_id="MD1", idempotency_key="k", metadata={}, description=""
    )
    again = fake.create_payment(
        amount_minor=1, currency="EUR", mandate_id="MD1", idempotency_key="k", metadata={}, description=""
    )
    assert again.id == first.id
    assert again.existing
    assert len(fake.payments) == 1
    setup = fake.create_mandate_setup(
        payer=PayerDetails(), currency="EUR", redirect_uri=None, metadata={}, idempotency_key="m"
    )
    assert (
        fake.create_mandate_setup(
            payer=PayerDetails(), currency="EUR", redirect_uri=None, metadata={}, idempotency_key="m"
        )
        == setup
    )


def test_the_fake_raises_classified_failures_and_refuses_inactive_mandates() -> None:
    fake = FakeDirectDebit(inactive_mandates={"MD0"}, failures=[requests.Timeout()])
    kwargs: dict[str, Any] = {"amount_minor": 1, "currency": "EUR", "idempotency_key": "k", "metadata": {}}
    with pytest.raises(TransientProviderError):
        fake.create_payment(mandate_id="MD1", description="", **kwargs)
    with pytest.raises(PermanentProviderError):
        fake.create_payment(mandate_id="MD0", description="", **kwargs)


def _conflict(resource_id: str) -> errors.IdempotentCreationConflictError:
    return errors.IdempotentCreationConflictError(
        {
            "type": "invalid_state",
            "code": 409,
            "message": "A resource has already been created with this idempotency key",
            "errors": [
                {
                    "reason": "idempotent_creation_conflict",
                    "message": "conflict",
                    "links": {"conflicting_resource_id": resource_id},
                }
            ],
        }
    )


class _Keyed:
    """A GoCardless create endpoint: a key seen before answers 409 naming what it made."""

    def __init__(self, prefix: str, conflicts: int = 0) -> None:
        self.prefix = prefix
        self.made: list[SimpleNamespace] = []
        self.keys: dict[str, str] = {}
        self.conflicts = conflicts  # the next creates answer 409 whatever their key

    def create(self, params: dict[str, Any], headers: dict[str, str] | None = None) -> SimpleNamespace:
        key = (headers or {}).get("Idempotency-Key")
        if self.conflicts or key in self.keys:
            self.conflicts = max(0, self.conflicts - 1)
            raise _conflict(self.keys.get(key or "", f"{self.prefix}_EARLIER"))
        made = SimpleNamespace(
            id=f"{self.prefix}{len(self.made) + 1}",
            authorisation_url=f"https://pay.example/flow/{len(self.made) + 1}",
            params=params,
        )
        self.made.append(made)
        if key:
            self.keys[key] = made.id
        return made


class _BillingRequests(_Keyed):
    def get(self, identity: str) -> SimpleNamespace:
        return next(m for m in self.made if m.id == identity)


class _Flows(_Keyed):
    """Like the official client's ``billing_request_flows``: create and initialise, no get."""

    def initialise(self, identity: str, params: Any = None, headers: Any = None) -> None:
        raise AssertionError("not used")


def _setup(adapter: GoCardlessDirectDebit) -> Any:
    return adapter.create_mandate_setup(
        payer=PayerDetails(email="aino@example.fi"),
        currency="EUR",
        redirect_uri="https://herald.example/mandates/complete?org=acme",
        metadata={"herald_invoice_id": "INV-1"},
        idempotency_key="acme:INV-1:mandate_setup",
    )


def test_a_retried_mandate_setup_reuses_the_billing_request_and_makes_a_new_flow() -> None:
    """A crash between the flow's create and its record: the retry must not need a GET of the
    flow (the API has none) and must give the payer a working link."""
    requests_, flows = _BillingRequests("BRQ"), _Flows("BRF")
    adapter = GoCardlessDirectDebit(SimpleNamespace(billing_requests=requests_, billing_request_flows=flows))  # type: ignore[arg-type]
    first = _setup(adapter)
    again = _setup(adapter)
    assert first.billing_request_id == again.billing_request_id == "BRQ1"
    assert len(requests_.made) == 1  # the request, found again by its key
    assert (first.flow_id, again.flow_id) == ("BRF1", "BRF2")  # a second flow for it is harmless
    assert [f.params["links"] for f in flows.made] == [{"billing_request": "BRQ1"}] * 2
    assert again.authorisation_url == flows.made[1].authorisation_url


def test_a_flow_conflict_from_the_clients_own_resend_makes_a_new_flow() -> None:
    """The client resends a create that timed out with its own key; a 409 for a flow is answered
    by creating one anew, never by a permanent refusal or an AttributeError."""
    flows = _Flows("BRF", conflicts=1)
    adapter = GoCardlessDirectDebit(
        SimpleNamespace(billing_requests=_BillingRequests("BRQ"), billing_request_flows=flows)  # type: ignore[arg-type]
    )
    setup = _setup(adapter)
    assert (setup.billing_request_id, setup.flow_id) == ("BRQ1", "BRF1")
