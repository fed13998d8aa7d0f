"""The read-and-cancel side of GoCardless: who the token is, full listings for sync, current state
of one resource for webhooks, and cancelling a payment. Over the official client
(``build_gocardless_client``); resources come back as plain dicts in GoCardless's JSON shape.

Errors: ``GoCardlessRefused`` (GoCardless answered 4xx: permanent, carries its own message and
reason) or ``GoCardlessUnavailable`` (5xx, 429, timeouts, connection errors: transient).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import gocardless_pro
import requests
from gocardless_pro import errors as gc_errors

from infra.adapters.gocardless import classify
from infra.errors import PermanentProviderError, TransientProviderError

JSON = dict[str, Any]
#: Resource types herald reads, by webhook ``resource_type``.
KINDS = ("customers", "mandates", "payments", "billing_requests")


class GoCardlessRefused(PermanentProviderError):
    """GoCardless refused the request (4xx); ``reason`` is its first error's reason."""

    def __init__(self, message: str, *, status: int | None, reason: str) -> None:
        super().__init__(message, status=status)
        self.gc_reason = reason


class GoCardlessUnavailable(TransientProviderError):
    """GoCardless could not answer now (5xx, 429, timeout, connection): try again later."""


def _translate(exc: Exception) -> Exception:
    """The reader's exception for a failed call, as ``infra.adapters.gocardless.classify`` decides
    (the one place that says permanent or transient for GoCardless)."""
    if not isinstance(exc, requests.exceptions.RequestException | gc_errors.GoCardlessProError):
        return exc
    decided = classify(exc)
    if isinstance(decided, TransientProviderError):
        return GoCardlessUnavailable(str(decided), status=decided.status)
    errors = getattr(exc, "errors", None) or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    reason = str(first.get("reason") or getattr(exc, "type", "") or "refused")
    message = str(getattr(exc, "message", "") or decided)
    return GoCardlessRefused(message, status=decided.status, reason=reason)


class GoCardlessReader(Protocol):
    """The port the sync, webhook and cancel handlers use."""

    def creditor_id(self) -> str: ...
    def all(self, kind: str) -> Iterator[JSON]: ...
    def get(self, kind: str, resource_id: str) -> JSON: ...
    def cancel_payment(self, payment_id: str) -> JSON: ...


class GoCardlessAccount:
    """``GoCardlessReader`` over the official client."""

    def __init__(self, client: gocardless_pro.Client, page_size: int = 500) -> None:
        self._client = client
        self._page_size = page_size

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _translate(exc) from exc

    def creditor_id(self) -> str:
        """The creditor the access token acts for; raises ``GoCardlessRefused`` for a bad token."""
        page = self._call(self._client.creditors.list, params={"limit": 1})
        if not page.records:
            raise GoCardlessRefused("the access token has no creditor", status=None, reason="no_creditor")
        return str(page.records[0].id)

    def all(self, kind: str) -> Iterator[JSON]:
        """Every record of ``kind``, oldest first, page by page (cursor pagination)."""
        pages = self._call(getattr(self._client, kind).all, params={"limit": self._page_size})
        iterator = iter(pages)
        while True:
            record = self._call(next, iterator, None)
            if record is None:
                return
            yield dict(record.attributes)

    def get(self, kind: str, resource_id: str) -> JSON:
        """One record's current state."""
        return dict(self._call(getattr(self._client, kind).get, resource_id).attributes)

    def cancel_payment(self, payment_id: str) -> JSON:
        """Cancel a payment; GoCardless refuses (422 ``cancellation_failed``) once it is submitted."""
        return dict(self._call(self._client.payments.cancel, payment_id).attributes)
