"""In-memory GoCardless resources for the GoCardless sandbox: no HTTP here.

Records are plain dicts in the API's JSON shape. Every public method takes one
lock and hands out copies, so the HTTP threads, the webhook thread and a test may
call in at once. A state change records GoCardless events (``EV…``) and hands
them to ``_send`` (the served sandbox's webhook sender) after the lock is released.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

JSON = dict[str, Any]
PREFIXES = {
    "billing_requests": "BRQ",
    "billing_request_flows": "BRF",
    "customers": "CU",
    "customer_bank_accounts": "BA",
    "mandates": "MD",
    "payments": "PM",
    "events": "EV",
    "creditors": "CR",
}
_KIND_BY_PREFIX = sorted(((p, k) for k, p in PREFIXES.items()), key=lambda pk: -len(pk[0]))
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: List filters matched against ``links`` (besides ``status``, ``resource_type`` and ``action``).
LINK_FILTERS = {
    "customer_bank_accounts": ("customer",),
    "mandates": ("customer", "customer_bank_account"),
    "payments": ("mandate", "customer"),
    "billing_requests": ("customer",),
    "events": ("payment", "mandate", "billing_request", "customer"),
}
CURRENCIES = frozenset({"GBP", "EUR", "SEK", "DKK", "AUD", "NZD", "CAD", "USD"})
MANDATE_INACTIVE = frozenset({"failed", "cancelled", "expired", "consumed", "blocked"})
#: Allowed moves (target: sources) for the admin helpers and the cancel actions.
PAYMENT_MOVES = {
    "submitted": {"pending_submission"},
    "confirmed": {"submitted"},
    "paid_out": {"confirmed"},
    "failed": {"pending_submission", "submitted"},
    "cancelled": {"pending_customer_approval", "pending_submission"},
    "charged_back": {"confirmed", "paid_out"},
}
MANDATE_MOVES = {
    "submitted": {"pending_submission"},
    "active": {"pending_submission", "submitted"},
    "failed": {"pending_submission", "submitted"},
    "cancelled": {"pending_customer_approval", "pending_submission", "submitted", "active"},
}
_DETAILS = {  # (origin, cause, description) per (resource_type, action)
    ("payments", "created"): ("api", "payment_created", "Payment created via the API."),
    ("payments", "submitted"): ("gocardless", "payment_submitted", "Payment submitted to the banks."),
    ("payments", "confirmed"): ("gocardless", "payment_confirmed", "Payment was collected successfully."),
    ("payments", "paid_out"): ("gocardless", "payment_paid_out", "The payment has been paid out."),
    ("payments", "failed"): ("bank", "insufficient_funds", "The customer had insufficient funds."),
    ("payments", "cancelled"): ("api", "payment_cancelled", "Payment cancelled."),
    ("payments", "charged_back"): ("bank", "payment_charged_back", "The customer asked for a refund."),
    ("mandates", "created"): ("api", "mandate_created", "Mandate created via the API."),
    ("mandates", "submitted"): ("gocardless", "mandate_submitted", "Mandate submitted to the banks."),
    ("mandates", "active"): ("gocardless", "mandate_activated", "The mandate is now active."),
    ("mandates", "failed"): ("bank", "invalid_bank_details", "The bank refused the mandate."),
    ("mandates", "cancelled"): ("api", "mandate_cancelled", "The mandate was cancelled."),
    ("billing_requests", "created"): ("api", "billing_request_created", "Billing request created."),
    ("billing_requests", "fulfilled"): ("api", "billing_request_fulfilled", "Billing request fulfilled."),
}
CREDITOR_ID = "CR000SANDBOX"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def now_iso() -> str:
    """GoCardless's timestamp format: ISO 8601, UTC, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id(kind: str) -> str:
    """An id shaped like GoCardless's: the resource prefix and 12 upper-case characters."""
    return PREFIXES.get(kind, kind) + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def kind_of(resource_id: str) -> str:
    """The collection an id belongs to, from its prefix."""
    for prefix, kind in _KIND_BY_PREFIX:
        if resource_id.startswith(prefix):
            return kind
    raise KeyError(resource_id)


class ApiFailure(Exception):
    """An answer in GoCardless's error envelope; the client maps ``type``/``code`` to its classes."""

    def __init__(self, status: int, type_: str, message: str, errors: list[JSON]) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.errors = status, type_, message, errors

    def envelope(self) -> JSON:
        reason = self.errors[0].get("reason", self.type) if self.errors else self.type
        return {
            "error": {
                "message": self.message,
                "documentation_url": f"https://developer.gocardless.com/api-reference#{reason}",
                "type": self.type,
                "request_id": str(uuid.uuid4()),
                "errors": self.errors,
                "code": self.status,
            }
        }


def usage_error(status: int, reason: str, message: str) -> ApiFailure:
    return ApiFailure(status, "invalid_api_usage", message, [{"reason": reason, "message": message}])


def state_error(reason: str, message: str, **links: str) -> ApiFailure:
    error: JSON = {"reason": reason, "message": message}
    if links:
        error["links"] = links
    return ApiFailure(
        409 if reason == "idempotent_creation_conflict" else 422, "invalid_state", message, [error]
    )


def invalid(kind: str, field: str, message: str) -> ApiFailure:
    pointer = f"/{kind}/" + field.replace(".", "/")
    errors = [{"field": field, "message": message, "request_pointer": pointer}]
    return ApiFailure(422, "validation_failed", "Validation failed", errors)


class SandboxState:
    """GoCardless's resources in memory, with the API's rules and the admin moves."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._data: dict[str, dict[str, JSON]] = {kind: {} for kind in PREFIXES}
        self._seq: dict[str, int] = {}
        self._idempotency: dict[tuple[str, str], str] = {}
        #: Prefix of ``authorisation_url`` (the sandbox's own URL once serving).
        self.public_base = "http://127.0.0.1"
        # The one creditor every token acts for (``GET /creditors``: what a token is connected to).
        self._store("creditors", {"id": CREDITOR_ID, "created_at": now_iso(), "name": "Sandbox Creditor"})

    # -- reading ----------------------------------------------------------------------------
    def record(self, resource_id: str) -> JSON:
        """A copy of one record; ``KeyError`` when there is none."""
        with self._lock:
            return copy.deepcopy(self._data[kind_of(resource_id)][resource_id])

    def records(self, kind: str) -> list[JSON]:
        """Copies of every record of a collection, oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._data[kind].values()))

    def fetch(self, kind: str, resource_id: str) -> JSON:
        with self._lock:
            found = self._data[kind].get(resource_id)
            if found is None:
                raise usage_error(404, "resource_not_found", f"Resource '{resource_id}' not found")
            return {kind: copy.deepcopy(found)}

    def list_page(self, kind: str, query: dict[str, str]) -> JSON:
        """One page, oldest first; ``after``/``before`` are record ids, as GoCardless's cursors."""
        try:
            limit = int(query.get("limit") or 50)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 500:
            raise invalid(kind, "limit", "must be between 1 and 500")
        with self._lock:
            cursors = {}
            for name in ("after", "before"):
                if query.get(name):
                    if query[name] not in self._seq:
                        raise usage_error(400, "cursor_invalid", f"Cursor '{query[name]}' is invalid")
                    cursors[name] = self._seq[query[name]]
            rows = [r for r in self._data[kind].values() if self._matches(kind, r, query)]
            lo, hi = cursors.get("after", -1), cursors.get("before", len(self._seq))
            window = [r for r in rows if lo < self._seq[r["id"]] < hi]
            page = window[-limit:] if "before" in cursors and "after" not in cursors else window[:limit]
            first, last = (self._seq[page[0]["id"]], self._seq[page[-1]["id"]]) if page else (lo, lo)
            more_before = bool(page) and any(self._seq[r["id"]] < first for r in rows)
            more_after = any(self._seq[r["id"]] > last for r in rows)
            return {
                kind: copy.deepcopy(page),
                "meta": {
                    "cursors": {
                        "before": page[0]["id"] if more_before else None,
                        "after": page[-1]["id"] if page and more_after else None,
                    },
                    "limit": limit,
                },
            }

    def _matches(self, kind: str, row: JSON, query: dict[str, str]) -> bool:
        for key in ("status", "resource_type", "action"):
            if query.get(key) and row.get(key) not in query[key].split(","):
                return False
        for key in LINK_FILTERS.get(kind, ()):
            if not query.get(key):
                continue
            have = row["links"].get(key)
            if have is None and kind == "payments" and key == "customer":
                have = self._data["mandates"][row["links"]["mandate"]]["links"]["customer"]
            if have != query[key]:
                return False
        return True

    # -- creating over the API --------------------------------------------------------------
    def create(self, kind: str, body: JSON, idempotency_key: str | None) -> JSON:
        """``POST /<kind>``; a key seen before answers 409 with the resource it created."""
        fields = body.get(kind)
        if not isinstance(fields, dict):
            raise usage_error(400, "invalid_document_structure", f"Expected a '{kind}' object")
        links = fields.get("links") or {}
        if not isinstance(links, dict):
            raise invalid(kind, "links", "must be an object")
        events: list[JSON] = []
        with self._lock:
            if idempotency_key and (kind, idempotency_key) in self._idempotency:
                existing = self._idempotency[(kind, idempotency_key)]
                raise state_error(
                    "idempotent_creation_conflict",
                    "A resource has already been created with this idempotency key",
                    conflicting_resource_id=existing,
                )
            record = getattr(self, f"_new_{kind}")(fields, links, events)
            if idempotency_key:
                self._idempotency[(kind, idempotency_key)] = record["id"]
            answer = {kind: copy.deepcopy(record)}
        self._emit(events)
        return answer

    def _link(self, kind: str, owner: str, name: str, links: JSON, required: bool = True) -> str | None:
        value = links.get(name)
        if value is None and not required:
            return None
        target = {"customer": "customers", "customer_bank_account": "customer_bank_accounts"}.get(
            name, name + "s"
        )
        if not isinstance(value, str) or value not in self._data[target]:
            raise invalid(owner, f"links.{name}", "must be an existing resource" if value else "is required")
        return value

    def _store(self, kind: str, record: JSON) -> JSON:
        self._data[kind][record["id"]] = record
        self._seq[record["id"]] = len(self._seq)
        return record

    def _new_customers(self, fields: JSON, links: JSON, events: list[JSON]) -> JSON:
        email = fields.get("email")
        if email is not None and (not isinstance(email, str) or not _EMAIL.match(email)):
            raise invalid("customers", "email", "is invalid")
        return self._add_customer(fields)

    def _new_customer_bank_accounts(self, fields: JSON, links: JSON, events: list[JSON]) -> JSON:
        customer = self._link("customer_bank_accounts", "customer_bank_accounts", "customer", links)
        assert customer is not None
        number = str(fields.get("account_number") or fields.get("iban") or "55779911")
        return self._add_bank_account(customer, fields.get("account_holder_name"), number[-2:], fields)

    def _new_mandates(self, fields: JSON, links: JSON, events: list[JSON]) -> JSON:
        account = self._link("mandates", "mandates", "customer_bank_account", links)
        assert account is not None
        mandate = self._add_mandate(account, "pending_submission", fields.get("scheme") or "bacs", fields)
        events.append(self._event("mandates", "created", mandate=mandate["id"]))
        return mandate

    def _new_payments(self, fields: JSON, links: JSON, events: list[JSON]) -> JSON:
        amount, currency = fields.get("amount"), fields.get("currency")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise invalid("payments", "amount", "must be a positive integer (minor units)")
        if currency not in CURRENCIES:
            raise invalid("payments", "currency", "is not a supported currency")
        mandate_id = self._link("payments", "payments", "mandate", links)
        assert mandate_id is not None
        if self._data["mandates"][mandate_id]["status"] in MANDATE_INACTIVE:
            raise state_error("mandate_is_inactive", "The mandate is cancelled, failed or expired")
        payment = self._add_payment(mandate_id, amount, currency, "pending_submission", fields)
        events.append(self._event("payments", "created", payment=payment["id"]))
        return payment

    def _new_billing_requests(self, fields: JSON, links: JSON, events: list[JSON]) -> JSON:
        request = fields.get("mandate_request")
        if not isinstance(request, dict) or request.get("currency") not in CURRENCIES:
            raise invalid("billing_requests", "mandate_request.currency", "is required")
        customer = self._link("billing_requests", "billing_requests", "customer", links, required=False)
        record = {
            "id": new_id("billing_requests"),
            "created_at": now_iso(),
            "status": "pending",
            "mandate_request": {
                "currency": request["currency"],
                "scheme": request.get("scheme") or "bacs",
                "verify": request.get("verify") or "recommended",
                "links": {},
            },
            "payment_request": None,
            "metadata": fields.get("metadata") or {},
            "links": {"customer": customer, "mandate_request": new_id("MRQ")},
        }
        self._store("billing_requests", record)
        events.append(self._event("billing_requests", "created", billing_request=str(record["id"])))
        return record

    def _new_billing_request_flows(self, fields: JSON, links: JSON, events: list[JSON]) -> JSON:
        request = self._link("billing_request_flows", "billing_request_flows", "billing_request", links)
        flow_id = new_id("billing_request_flows")
        return self._store(
            "billing_request_flows",
            {
                "id": flow_id,
                "created_at": now_iso(),
                "authorisation_url": f"{self.public_base}/flow/{flow_id}",
                "redirect_uri": fields.get("redirect_uri"),
                "exit_uri": fields.get("exit_uri"),
                "expires_at": (datetime.now(UTC) + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
                "auto_fulfil": True,
                "lock_customer_details": bool(fields.get("lock_customer_details")),
                "lock_bank_account": bool(fields.get("lock_bank_account")),
                "session_token": fields.get("session_token"),
                "links": {"billing_request": request},
            },
        )

    # -- records without the API's checks (seeding, and the state moves) ---------------------
    def _add_customer(self, fields: JSON) -> JSON:
        keys: tuple[str, ...] = (
            "email",
            "given_name",
            "family_name",
            "company_name",
            "address_line1",
            "city",
        )
        keys += ("postal_code", "country_code", "language", "phone_number")
        record = {"id": new_id("customers"), "created_at": now_iso()}
        record |= {k: fields.get(k) for k in keys} | {"metadata": fields.get("metadata") or {}}
        record["language"] = record["language"] or "en"
        return self._store("customers", record)

    def _add_bank_account(self, customer: str, holder: Any, ending: str, fields: JSON) -> JSON:
        person = self._data["customers"][customer]
        name = (
            holder or person.get("company_name") or f"{person.get('given_name')} {person.get('family_name')}"
        )
        return self._store(
            "customer_bank_accounts",
            {
                "id": new_id("customer_bank_accounts"),
                "created_at": now_iso(),
                "account_holder_name": name,
                "account_number_ending": ending,
                "bank_name": "SANDBOX BANK",
                "country_code": fields.get("country_code") or "GB",
                "currency": fields.get("currency") or "GBP",
                "enabled": True,
                "metadata": fields.get("metadata") or {},
                "links": {"customer": customer},
            },
        )

    def _add_mandate(self, account: str, status: str, scheme: str, fields: JSON) -> JSON:
        mandate_id = new_id("mandates")
        customer = self._data["customer_bank_accounts"][account]["links"]["customer"]
        return self._store(
            "mandates",
            {
                "id": mandate_id,
                "created_at": now_iso(),
                "reference": fields.get("reference") or "SANDBOX-" + mandate_id[2:8],
                "status": status,
                "scheme": scheme,
                "next_possible_charge_date": (datetime.now(UTC) + timedelta(days=3)).date().isoformat(),
                "payments_require_approval": False,
                "metadata": fields.get("metadata") or {},
                "links": {"customer_bank_account": account, "creditor": "CR000SANDBOX", "customer": customer},
            },
        )

    def _add_payment(self, mandate: str, amount: int, currency: str, status: str, fields: JSON) -> JSON:
        charge = fields.get("charge_date") or (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
        return self._store(
            "payments",
            {
                "id": new_id("payments"),
                "created_at": now_iso(),
                "charge_date": charge,
                "amount": amount,
                "amount_refunded": 0,
                "currency": currency,
                "description": fields.get("description"),
                "reference": fields.get("reference"),
                "status": status,
                "retry_if_possible": bool(fields.get("retry_if_possible", True)),
                "metadata": fields.get("metadata") or {},
                "links": {"mandate": mandate, "creditor": "CR000SANDBOX"},
            },
        )

    def _event(
        self,
        resource_type: str,
        action: str,
        metadata: JSON | None = None,
        cause: str | None = None,
        **links: str,
    ) -> JSON:
        origin, usual, description = _DETAILS.get(
            (resource_type, action), ("gocardless", f"{resource_type[:-1]}_{action}", action)
        )
        details = {"origin": origin, "cause": cause or usual, "description": description}
        if origin == "bank":
            details |= {"scheme": "bacs", "reason_code": "ARUDD-0"}
        event = {
            "id": new_id("events"),
            "created_at": now_iso(),
            "resource_type": resource_type,
            "action": action,
            "links": links,
            "details": details,
            "metadata": metadata or {},
        }
        return copy.deepcopy(self._store("events", event))

    def _emit(self, events: list[JSON], webhook: bool = True) -> None:
        if events and webhook:
            self._send(events, 1)

    def _send(self, events: list[JSON], times: int) -> str | None:
        """Deliver ``events`` in one webhook; the served sandbox overrides this."""
        return None

    def _move(self, kind: str, resource_id: str, status: str, moves: dict[str, set[str]]) -> JSON:
        record = self._data[kind].get(resource_id)
        if record is None:
            raise usage_error(404, "resource_not_found", f"Resource '{resource_id}' not found")
        if record["status"] not in moves.get(status, set()):
            raise state_error(
                "invalid_state_transition", f"{resource_id} is {record['status']}, not → {status}"
            )
        record["status"] = status
        return record

    def cancel(self, kind: str, resource_id: str, body: JSON) -> JSON:
        """``POST /payments|mandates/{id}/actions/cancel``: 422 ``cancellation_failed`` when too late."""
        metadata = (body.get("data") or {}).get("metadata") if isinstance(body.get("data"), dict) else None
        with self._lock:
            found = self._data[kind].get(resource_id)
            moves = PAYMENT_MOVES if kind == "payments" else MANDATE_MOVES
            if found is not None and found["status"] not in moves["cancelled"]:
                what = "payment" if kind == "payments" else "mandate"
                raise state_error("cancellation_failed", f"This {what} cannot be cancelled")
            events = self._set_status(kind, resource_id, "cancelled", metadata)
            answer = {kind: copy.deepcopy(self._data[kind][resource_id])}
        self._emit(events)
        return answer

    def _set_status(
        self, kind: str, resource_id: str, status: str, metadata: JSON | None = None
    ) -> list[JSON]:
        moves = PAYMENT_MOVES if kind == "payments" else MANDATE_MOVES
        self._move(kind, resource_id, status, moves)
        link = {kind[:-1]: resource_id}
        events = [self._event(kind, status, metadata, **link)]
        if kind == "mandates" and status in ("cancelled", "failed"):  # its unsubmitted payments go too
            for payment in self._data["payments"].values():
                pending = payment["status"] in PAYMENT_MOVES["cancelled"]
                if payment["links"]["mandate"] == resource_id and pending:
                    payment["status"] = "cancelled"
                    cause = f"mandate_{status}"
                    events.append(self._event("payments", "cancelled", cause=cause, payment=payment["id"]))
        return events

    def events_for(self, ids: Iterable[str]) -> list[JSON]:
        with self._lock:
            return [copy.deepcopy(self._data["events"][i]) for i in ids]
