"""Test and demo helpers of the GoCardless sandbox: seed records, spoil some, move them on.

What GoCardless itself does (the payer completing a Billing Request Flow, the banks
moving a payment or mandate along) is done here by hand; each move records events
and, unless ``webhook=False``, sends them in one signed webhook.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from tooling.sandboxes.gocardless.state import (
    JSON,
    MANDATE_MOVES,
    PAYMENT_MOVES,
    SandboxState,
    kind_of,
    state_error,
    usage_error,
)


class SandboxAdmin(SandboxState):
    """The sandbox's state plus the helpers tests and the ``/sandbox/…`` endpoints call."""

    def add_customer(self, **fields: Any) -> JSON:
        """A customer, stored as given (no validation: a malformed email stays malformed)."""
        with self._lock:
            return copy.deepcopy(self._add_customer(fields))

    def add_mandate(self, customer_id: str, status: str = "active", scheme: str = "bacs") -> JSON:
        """A bank account and a mandate in ``status`` for an existing customer (no events)."""
        with self._lock:
            if customer_id not in self._data["customers"]:
                raise KeyError(customer_id)
            account = self._add_bank_account(customer_id, None, "11", {})
            return copy.deepcopy(self._add_mandate(account["id"], status, scheme, {}))

    def add_customers(
        self, count: int, *, mandate_status: str | None = "active", bad_emails: int = 0, start: int = 1
    ) -> list[JSON]:
        """``count`` customers (``customer{n}@example.com``), each with a mandate unless
        ``mandate_status`` is None; the first ``bad_emails`` get an email without an "@"."""
        made = []
        for n in range(start, start + count):
            at = "." if n - start < bad_emails else "@"
            customer = self.add_customer(
                email=f"customer{n}{at}example.com", given_name=f"Customer{n}", family_name="Sandbox"
            )
            if mandate_status is not None:
                self.add_mandate(customer["id"], mandate_status)
            made.append(customer)
        return made

    def add_payment(
        self,
        mandate_id: str,
        amount: int = 1000,
        currency: str = "GBP",
        status: str = "pending_submission",
        **fields: Any,
    ) -> JSON:
        """A payment in any ``status``, stored as given (no events)."""
        with self._lock:
            if mandate_id not in self._data["mandates"]:
                raise KeyError(mandate_id)
            return copy.deepcopy(self._add_payment(mandate_id, amount, currency, status, fields))

    def patch(self, resource_id: str, **fields: Any) -> JSON:
        """Overwrite fields of any record as they are (to make records bad for sync tests)."""
        with self._lock:
            record = self._data[kind_of(resource_id)][resource_id]
            record.update(copy.deepcopy(fields))
            return copy.deepcopy(record)

    def set_payment_status(self, payment_id: str, status: str, *, webhook: bool = True) -> list[JSON]:
        """Move a payment on (``submitted``, ``confirmed``, ``paid_out``, ``failed``, ``cancelled``,
        ``charged_back``) as GoCardless would; its events."""
        return self._admin_move("payments", payment_id, status, PAYMENT_MOVES, webhook)

    def set_mandate_status(self, mandate_id: str, status: str, *, webhook: bool = True) -> list[JSON]:
        """Move a mandate on (``submitted``, ``active``, ``failed``, ``cancelled``); a cancelled or
        failed mandate cancels its payments not yet submitted. Its events."""
        return self._admin_move("mandates", mandate_id, status, MANDATE_MOVES, webhook)

    def _admin_move(
        self, kind: str, resource_id: str, status: str, moves: dict[str, set[str]], webhook: bool
    ) -> list[JSON]:
        if status not in moves:
            raise state_error("invalid_state_transition", f"unknown target status {status!r}")
        with self._lock:
            events = self._set_status(kind, resource_id, status)
        self._emit(events, webhook)
        return events

    def complete_flow(
        self,
        flow_id: str,
        *,
        customer: JSON | None = None,
        mandate_status: str = "active",
        webhook: bool = True,
    ) -> JSON:
        """The payer completes a Billing Request Flow: the customer (made from ``customer`` when
        the request has none), a bank account and a mandate are created and the billing request
        is fulfilled. Events: ``billing_requests.fulfilled``, ``mandates.created`` and, unless
        ``mandate_status`` is ``pending_submission``, the move to it. The billing request."""
        with self._lock:
            flow = self._data["billing_request_flows"].get(flow_id)
            if flow is None:
                raise usage_error(404, "resource_not_found", f"Resource '{flow_id}' not found")
            request = self._data["billing_requests"][flow["links"]["billing_request"]]
            if request["status"] != "pending":
                raise state_error("billing_request_not_pending", f"{request['id']} is {request['status']}")
            customer_id = request["links"]["customer"]
            if customer_id is None:
                n = len(self._data["customers"]) + 1
                details = {"email": f"payer{n}@example.com", "given_name": "Payer", "family_name": str(n)}
                customer_id = self._add_customer(details | (customer or {}))["id"]
            wanted = request["mandate_request"]
            account = self._add_bank_account(customer_id, None, "11", {"currency": wanted["currency"]})
            mandate = self._add_mandate(account["id"], "pending_submission", wanted["scheme"], {})
            request["status"] = "fulfilled"
            request["mandate_request"]["links"] = {"mandate": mandate["id"]}
            request["links"] |= {
                "customer": customer_id,
                "customer_bank_account": account["id"],
                "mandate_request_mandate": mandate["id"],
            }
            links = {"billing_request": request["id"], "customer": customer_id}
            links["mandate_request_mandate"] = mandate["id"]
            events = [self._event("billing_requests", "fulfilled", **links)]
            events.append(self._event("mandates", "created", mandate=mandate["id"]))
            if mandate_status != "pending_submission":
                events += self._set_status("mandates", mandate["id"], mandate_status)
            answer = copy.deepcopy(request)
        self._emit(events, webhook)
        return answer

    def send_webhook(
        self, events: Iterable[JSON | str], *, times: int = 1, reverse: bool = False
    ) -> str | None:
        """Send recorded events (dicts or ``EV…`` ids) in ONE webhook, ``times`` over, in
        reverse order if asked; the webhook id (None when no webhook URL is set)."""
        ids = [e if isinstance(e, str) else e["id"] for e in events]
        found = self.events_for(ids[::-1] if reverse else ids)
        return self._send(found, times)
