"""Demo directory and events: what ``herald demo`` and the end-to-end tests publish."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

DEMO_ORG = "acme"
#: Twilio's magic number for "invalid To": the sandbox refuses it with 21211.
INVALID_TO = "+15005550001"


def _contact(cid: str, name: str, mobile: str | None, locale: str, **extra: Any) -> dict[str, Any]:
    return {"contact_id": cid, "primary": True, "name": name, "mobile": mobile, "locale": locale, **extra}


def demo_customers(count: int = 200) -> list[dict[str, Any]]:
    """``count`` customers whose primary contact can receive SMS, plus a few that show the rules."""
    customers = [
        {
            "org_id": DEMO_ORG,
            "customer_id": f"C{i:04d}",
            "name": f"Customer {i}",
            "sms_enabled": True,
            "contacts": [
                _contact(f"P{i:04d}", f"Contact {i}", f"+35840{i:07d}", "fi" if i % 2 else "en"),
                # A contact person: no SMS unless switched on individually.
                {**_contact(f"Q{i:04d}", f"Colleague {i}", f"+35850{i:07d}", "en"), "primary": False},
            ],
        }
        for i in range(1, count + 1)
    ]
    customers += [
        {
            "org_id": DEMO_ORG,
            "customer_id": "C-SMS-OFF",
            "name": "No SMS Oy",
            "sms_enabled": False,
            "contacts": [
                _contact(
                    "P-SMS-OFF", "Silent", "+358401111111", "fi", emails=[{"address": "silent@example.fi"}]
                )
            ],
        },
        {
            "org_id": DEMO_ORG,
            "customer_id": "C-NO-PHONE",
            "name": "Paper Ltd",
            "contacts": [
                _contact("P-NO-PHONE", "Nophone", None, "en", emails=[{"address": "ap@paper.example"}])
            ],
        },
        {
            "org_id": DEMO_ORG,
            "customer_id": "C-BAD-NUMBER",
            "name": "Typo Inc",
            # The SMTP sandbox refuses reject…@ addresses with 550: an email failed for good.
            "contacts": [
                _contact(
                    "P-BAD-NUMBER", "Typo", INVALID_TO, "en", emails=[{"address": "reject@typo.example"}]
                )
            ],
        },
    ]
    return customers


def _invoice(n: int, customer_id: str, *, send: bool = True) -> dict[str, Any]:
    return {
        "id": f"INV-{n:05d}",
        "number": f"{10000 + n}",
        "customer_id": customer_id,
        "currency": "EUR",
        "total": f"{100 + n}.50",
        "balance": f"{100 + n}.50",
        "due_date": (date(2026, 12, 1) + timedelta(days=n % 28)).isoformat(),
        "url": f"https://billing.example/i/INV-{n:05d}",
        "send": send,
        "recurring": n % 10 == 0,
        "collection": None,
    }


def invoice_events(count: int, *, start: int = 1, run: str = "demo") -> list[dict[str, Any]]:
    """``count`` ``invoice.created`` events (create-and-send) for customers C0001…"""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return [
        {
            "type": "invoice.created",
            "event_id": f"evt_{run}_{n:05d}",
            "org_id": DEMO_ORG,
            "occurred_at": now,
            "data": {"invoice": _invoice(n, f"C{(n - 1) % 200 + 1:04d}")},
        }
        for n in range(start, start + count)
    ]


def showcase_events(run: str = "demo") -> list[dict[str, Any]]:
    """Events that show each outcome: skipped by a rule, refused by the provider, reminder, thank-you."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    reminder_invoice = _invoice(1, "C0001")

    def envelope(kind: str, eid: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": kind,
            "event_id": f"evt_{run}_{eid}",
            "org_id": DEMO_ORG,
            "occurred_at": now,
            "data": data,
        }

    return [
        envelope("invoice.created", "sms_off", {"invoice": _invoice(9001, "C-SMS-OFF")}),
        envelope("invoice.created", "no_phone", {"invoice": _invoice(9002, "C-NO-PHONE")}),
        envelope("invoice.created", "bad_number", {"invoice": _invoice(9003, "C-BAD-NUMBER")}),
        envelope("invoice.created", "draft", {"invoice": _invoice(9004, "C0002", send=False)}),
        envelope("reminder.due", "reminder", {"invoice": reminder_invoice, "reminder": {"offset_days": 3}}),
        envelope(
            "payment.received",
            "payment",
            {
                "payment": {
                    "id": "PAY-1",
                    "invoice_id": reminder_invoice["id"],
                    "customer_id": "C0001",
                    "amount": reminder_invoice["balance"],
                    "currency": "EUR",
                    "method": "online",
                    "notify": False,
                }
            },
        ),
    ]
