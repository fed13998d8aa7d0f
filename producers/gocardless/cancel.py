"""Cancelling a GoCardless payment: only while ``pending_submission``, checked at GoCardless."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.adapters.gocardless_account import GoCardlessReader, GoCardlessRefused, GoCardlessUnavailable
from infra.bootstrap import Services
from infra.store import gocardless as store
from infra.store.integrations import integration_active

CANCELLABLE = "pending_submission"


class CancelRefused(Exception):
    """A cancel herald refuses; ``code`` and ``http_status`` for the JSON error shape."""

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status

    def as_json(self) -> dict[str, Any]:
        """``{"error": {"code": …, "message": …, "details": []}}``: the API's one error shape."""
        return {"error": {"code": self.code, "message": self.message, "details": []}}


def refusal(payment_id: str, status: str) -> CancelRefused:
    """The refusal for a payment past ``pending_submission`` (pure)."""
    return CancelRefused(
        "not_cancellable",
        f"cannot cancel {payment_id}: it is {status}; only {CANCELLABLE} payments can be cancelled",
        409,
    )


def cancel_payment(services: Services, reader: GoCardlessReader, payment_id: str) -> dict[str, Any]:
    """Cancel ``payment_id`` at GoCardless and record it; the payment as GoCardless now has it.

    Its status is read at GoCardless first (our copy may be behind); a payment submitted between
    that read and the cancel is refused by GoCardless, and reported with its status re-read.
    """
    with services.reading() as conn:
        if not integration_active(conn, "gocardless", services.settings):
            raise CancelRefused("integration_disconnected", "the GoCardless integration is disconnected", 409)
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
            raise CancelRefused("not_found", f"no payment {payment_id} at GoCardless", 404) from exc
        raise CancelRefused("refused", f"GoCardless refused: {exc}", 422) from exc
    except GoCardlessUnavailable as exc:
        raise CancelRefused("provider_unavailable", str(exc), 503) from exc
    _record(services, payment)
    return payment


def _record(services: Services, payment: dict[str, Any]) -> None:
    with services.transaction() as conn:
        store.upsert_payment(conn, payment, datetime.now(UTC))
