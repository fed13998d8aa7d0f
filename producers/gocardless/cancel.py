"""Cancelling a GoCardless payment: only while ``pending_submission``, checked at GoCardless."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.adapters.gocardless_account import GoCardlessReader, GoCardlessRefused
from infra.bootstrap import Services
from infra.errors import IntegrationInactive, NotCancellable, NotFound, Refused
from infra.store import gocardless as store
from infra.store.integrations import integration_active

CANCELLABLE = "pending_submission"


def refusal(payment_id: str, status: str) -> NotCancellable:
    """The refusal for a payment past ``pending_submission`` (pure)."""
    return NotCancellable(
        f"cannot cancel {payment_id}: it is {status}; only {CANCELLABLE} payments can be cancelled"
    )


def cancel_payment(services: Services, reader: GoCardlessReader, payment_id: str) -> dict[str, Any]:
    """Cancel ``payment_id`` at GoCardless and record it; the payment as GoCardless now has it.

    Its status is read at GoCardless first (our copy may be behind); a payment submitted between
    that read and the cancel is refused by GoCardless, and reported with its status re-read.
    Refusals: ``IntegrationInactive``, ``NotCancellable``, ``NotFound`` (not at GoCardless), or
    ``Refused`` (GoCardless refused for another reason); ``GoCardlessUnavailable`` when
    GoCardless could not answer.
    """
    with services.reading() as conn:
        if not integration_active(conn, "gocardless", services.settings):
            raise IntegrationInactive("the GoCardless integration is disconnected")
    try:
        payment = reader.get("payments", payment_id)
        if payment["status"] != CANCELLABLE:
            _record(services, payment)
            raise refusal(payment_id, payment["status"])
        try:
            payment = reader.cancel_payment(payment_id)
        except GoCardlessRefused as exc:
            if exc.gc_reason != "cancellation_failed":
                raise
            payment = reader.get("payments", payment_id)
            _record(services, payment)
            raise refusal(payment_id, payment["status"]) from exc
    except GoCardlessRefused as exc:
        if exc.status == 404:
            raise NotFound(f"no payment {payment_id} at GoCardless") from exc
        raise Refused(f"GoCardless refused: {exc}") from exc
    _record(services, payment)
    return payment


def _record(services: Services, payment: dict[str, Any]) -> None:
    with services.transaction() as conn:
        store.upsert_payment(conn, payment, datetime.now(UTC))
