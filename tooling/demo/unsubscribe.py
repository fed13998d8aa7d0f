"""The demo's unsubscribe: one preference link printed, one contact unsubscribing in one click.

After the pipeline has settled: the email Silent (``P-SMS-OFF``) got for ``INV-09001`` carries a
preference link and ``List-Unsubscribe``; the demo POSTs the one-click URL to the api process, as
a mail client does, publishes another invoice for the same customer and shows it skipped
``category_off`` with the consent row that did it.
"""

from __future__ import annotations

import re
import time
import urllib.request
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.tables import notifications
from producers.cli.console import out
from producers.publisher import Publisher
from tooling.demo import data as demo_data

ADDRESS = "silent@example.fi"
NEXT_INVOICE = 9005


def _captured(messages: list[EmailMessage]) -> EmailMessage | None:
    return next((m for m in messages if m["To"] == ADDRESS), None)


def _skipped(svc: Services, invoice: str) -> str | None:
    with svc.reading() as conn:
        return conn.execute(
            select(notifications.c.reason).where(
                notifications.c.invoice_id == invoice, notifications.c.channel == "email"
            )
        ).scalar()


def show_unsubscribe(svc: Services, settings: Settings, messages: list[EmailMessage], timeout: float) -> bool:
    """Print the link, unsubscribe in one click, show the next invoice skipped; whether it did."""
    message = _captured(messages)
    if message is None:
        out.print(f"[red]no email to {ADDRESS} was captured[/]")
        return False
    header = str(message["List-Unsubscribe"] or "")
    one_click = re.findall(r"<(https?://[^>]+)>", header)
    text = message.get_body(("plain",))
    body = text.get_content() if isinstance(text, EmailMessage) else ""
    links = re.findall(r"https?://\S+/preferences/\S+", body)
    if not one_click or not links:
        out.print("[red]the email carries no preference link[/] (HERALD_LINK_SECRET, HERALD_PUBLIC_URL)")
        return False
    out.print(f"[bold]6. preference link[/] (Silent, {ADDRESS}): {links[0]}")
    out.print(f"   List-Unsubscribe: {header}")
    out.print(f"   List-Unsubscribe-Post: {message['List-Unsubscribe-Post']}")
    request = urllib.request.Request(  # noqa: S310 - the demo's own api, http(s) only
        one_click[0],
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the demo's own api
        out.print(f"   one-click unsubscribe: POST → {answer.status} {answer.read().decode()[:80]}")
    event: dict[str, Any] = demo_data.invoice_events(1, start=NEXT_INVOICE, run="demo-unsubscribed")[0]
    event["data"]["invoice"]["customer_id"] = "C-SMS-OFF"
    with Publisher(settings) as publisher:
        publisher.publish_many([event])
    invoice = event["data"]["invoice"]["id"]
    deadline = time.monotonic() + timeout
    while (reason := _skipped(svc, invoice)) is None and time.monotonic() < deadline:
        time.sleep(0.2)  # polled against the deadline above
    out.print(f"   the next invoice's email ({invoice}): {reason or 'not decided in time'}")
    return reason == "category_off"
