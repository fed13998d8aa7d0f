"""Direct Debit through GoCardless: the port the ``collect`` stage needs, the adapter over the
official ``gocardless-pro`` client, and a fake for unit tests.

Errors are classified here and only here (``classify``): GoCardless's validation, invalid-state,
usage and authorisation refusals are ``PermanentProviderError``; 5xx, rate limits (429), timeouts
and connection errors are ``TransientProviderError``. An idempotency conflict is not an error at
all: it names the resource the same key already created, which is fetched and returned.

Billing Request Flows are the exception: the API has no GET for a flow (the official client's
``billing_request_flows`` has only ``create`` and ``initialise``), so a conflict could not be
resolved to the flow it names. They need no idempotency either: a flow is only a link to the
Billing Request, and a second flow for the same request is allowed and harmless (the one the
payer never saw is simply never opened). So herald sends no key of its own for a flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import gocardless_pro
import requests
from gocardless_pro import errors as gc_errors

from infra.errors import PermanentProviderError, ProviderError, TransientProviderError
from schemas.directory import PayerDetails


@dataclass(frozen=True)
class PaymentRef:
    """A GoCardless payment as collect records it. ``existing``: found through its idempotency key."""

    id: str
    amount_minor: int
    currency: str
    status: str
    mandate_id: str
    charge_date: str | None = None
    created_at: str | None = None
    existing: bool = False


@dataclass(frozen=True)
class MandateSetup:
    """A Billing Request with a mandate request, and the Flow whose page the payer opens."""

    billing_request_id: str
    flow_id: str
    authorisation_url: str


class DirectDebit(Protocol):
    """The port: what collecting an invoice needs from a Direct Debit provider."""

    def create_payment(
        self,
        *,
        amount_minor: int,
        currency: str,
        mandate_id: str,
        idempotency_key: str,
        metadata: dict[str, str],
        description: str,
    ) -> PaymentRef:
        """Create a payment once per ``idempotency_key``; a repeated key returns the first payment."""
        ...

    def create_mandate_setup(
        self,
        *,
        payer: PayerDetails,
        currency: str,
        redirect_uri: str | None,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> MandateSetup:
        """A Billing Request (``mandate_request`` in ``currency``) and its Flow, once per key."""
        ...

    def get_payment(self, payment_id: str) -> PaymentRef:
        """One payment as GoCardless has it now."""
        ...


def classify(exc: BaseException) -> ProviderError:
    """The herald error a failed GoCardless call comes to (the one place that decides)."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        # Creates carry an Idempotency-Key, so sending one again cannot make a second resource.
        return TransientProviderError(f"gocardless unreachable: {type(exc).__name__}")
    if isinstance(exc, gc_errors.RateLimitError):
        return TransientProviderError("gocardless rate limit", status=429)
    if isinstance(exc, gc_errors.GoCardlessInternalError):
        return TransientProviderError(f"gocardless internal error: {exc}", status=_status(exc))
    if isinstance(exc, gc_errors.MalformedResponseError):
        status = exc.status_code
        if status is None or status >= 500 or status == 429:
            # A proxy's HTML error page in front of the API: it is down, not refusing us.
            return TransientProviderError("gocardless answered malformed", status=status)
        return PermanentProviderError("gocardless answered malformed", status=status)
    if isinstance(exc, gc_errors.ApiError):
        status = _status(exc)
        if status is not None and (status >= 500 or status == 429):
            return TransientProviderError(f"gocardless {status}: {exc}", status=status)
        # validation_failed, invalid_state, invalid_api_usage, authentication, permissions
        return PermanentProviderError(f"gocardless {exc.type or 'error'}: {_reason(exc)}", status=status)
    if isinstance(exc, gc_errors.GoCardlessProError):
        return TransientProviderError(f"gocardless client error: {exc}")
    raise exc


def _status(exc: gc_errors.ApiError) -> int | None:
    code = exc.code
    return int(code) if isinstance(code, int | str) and str(code).isdigit() else None


def _reason(exc: gc_errors.ApiError) -> str:
    reasons = [str(e.get("reason")) for e in (exc.errors or []) if isinstance(e, dict) and e.get("reason")]
    fields = [str(e.get("field")) for e in (exc.errors or []) if isinstance(e, dict) and e.get("field")]
    detail = ", ".join(reasons + fields)
    return f"{exc.message} ({detail})" if detail else str(exc.message)


def _payment_ref(payment: Any, *, existing: bool = False) -> PaymentRef:
    return PaymentRef(
        id=payment.id,
        amount_minor=int(payment.amount),
        currency=payment.currency,
        status=payment.status,
        mandate_id=payment.links.mandate,
        charge_date=payment.charge_date,
        created_at=payment.created_at,
        existing=existing,
    )


class GoCardlessDirectDebit:
    """``DirectDebit`` over the official client (built by ``build_gocardless_client``, which
    raises on idempotency conflicts so that this adapter decides what they mean)."""

    def __init__(self, client: gocardless_pro.Client) -> None:
        self._client = client

    def create_payment(
        self,
        *,
        amount_minor: int,
        currency: str,
        mandate_id: str,
        idempotency_key: str,
        metadata: dict[str, str],
        description: str,
    ) -> PaymentRef:
        """See ``DirectDebit.create_payment``; a conflict fetches the existing payment, never a second."""
        params = {
            "amount": amount_minor,
            "currency": currency,
            "description": description,
            "metadata": metadata,
            "links": {"mandate": mandate_id},
        }
        try:
            try:
                made = self._client.payments.create(
                    params=params, headers={"Idempotency-Key": idempotency_key}
                )
            except gc_errors.IdempotentCreationConflictError as conflict:
                return _payment_ref(
                    self._client.payments.get(conflict.conflicting_resource_id), existing=True
                )
            return _payment_ref(made)
        except Exception as exc:
            raise classify(exc) from exc

    def create_mandate_setup(
        self,
        *,
        payer: PayerDetails,
        currency: str,
        redirect_uri: str | None,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> MandateSetup:
        """See ``DirectDebit.create_mandate_setup``. The Billing Request carries a key derived
        from ``idempotency_key``, so a retry after a crash reuses the request made before; its Flow
        is made anew each time (see the module's docstring), so the retry always has a link."""
        try:
            request = self._create_once(
                self._client.billing_requests,
                {"mandate_request": {"currency": currency}, "metadata": metadata},
                f"{idempotency_key}:billing_request",
            )
            prefilled = {k: v for k, v in (("email", payer.email), ("company_name", payer.company_name)) if v}
            flow_params: dict[str, Any] = {
                "prefilled_customer": prefilled,
                "links": {"billing_request": request.id},
            }
            if redirect_uri:
                flow_params["redirect_uri"] = redirect_uri
            flow = self._create_flow(flow_params)
            return MandateSetup(request.id, flow.id, flow.authorisation_url)
        except Exception as exc:
            raise classify(exc) from exc

    def _create_flow(self, params: dict[str, Any]) -> Any:
        """A new Billing Request Flow. No key of ours: the client adds a fresh one per call and
        keeps it across its own resends of that call. Should such a resend find its first try
        went through (409), that flow cannot be fetched: one more, under a new key, is made."""
        flows = self._client.billing_request_flows
        try:
            return flows.create(params=params)
        except gc_errors.IdempotentCreationConflictError:
            return flows.create(params=params)

    @staticmethod
    def _create_once(service: Any, params: dict[str, Any], key: str) -> Any:
        """Create once per ``key``; a conflict fetches what the key made (``service`` has ``get``)."""
        try:
            return service.create(params=params, headers={"Idempotency-Key": key})
        except gc_errors.IdempotentCreationConflictError as conflict:
            return service.get(conflict.conflicting_resource_id)

    def get_payment(self, payment_id: str) -> PaymentRef:
        """See ``DirectDebit.get_payment``."""
        try:
            return _payment_ref(self._client.payments.get(payment_id))
        except Exception as exc:
            raise classify(exc) from exc
