"""Manual notify: preview exactly what would be sent for a stored invoice, then send exactly that."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from infra.bootstrap import Services
from infra.errors import Conflict, Invalid, NotFound
from infra.retry_policy import is_permanent_render_error
from infra.store.directory import load_customer
from infra.store.notifications import (
    NewNotification,
    load_notification,
    record_event,
    record_notifications,
    store_rendered,
)
from infra.store.organisations import load_org
from infra.store.tables import events
from infra.store.templates import greeting_names, load_overrides
from schemas.events import EVENT_TYPES, Event, event_adapter
from schemas.notifications import Kind
from schemas.validation import event_to_json
from workers.rules.preview import PreviewLine, build_preview, fingerprint
from workers.rules.render import TemplateInvalid, render_failure
from workers.rules.templates import TemplateLimits, TemplateRenderError

KIND_OF = {
    "invoice.created": Kind.INVOICE,
    "reminder.due": Kind.PAYMENT_REMINDER,
    "payment.received": Kind.PAYMENT_THANK_YOU,
}
CHANNELS = ("sms", "email")


@dataclass(frozen=True)
class Prepared:
    """What a manual notify would send: the source event, the kind, one line per recipient."""

    event: Event
    kind: Kind
    lines: list[PreviewLine]

    @property
    def fingerprint(self) -> str:
        """The preview id: ``send`` goes ahead only when it still matches."""
        return fingerprint(self.lines)


def prepare(
    svc: Services,
    invoice_id: str,
    *,
    org_id: str | None = None,
    event_id: str | None = None,
    kind: str | None = None,
    channel: str | None = None,
) -> Prepared:
    """Build the preview from the invoice's latest (or the named) stored upstream event.

    Raises ``NotFound`` when no such event is stored (in ``org_id``, when given) and
    ``Invalid`` for an unknown kind or channel, or when the message does not render (naming the
    template and the line, or the value that cannot be shown).
    """
    try:
        chosen_kind = Kind(kind) if kind else None
    except ValueError:
        raise Invalid(
            f"kind {kind!r}: expected one of {', '.join(k.value for k in KIND_OF.values())}"
        ) from None
    if channel is not None and channel not in CHANNELS:
        raise Invalid(f"channel {channel!r}: expected one of {', '.join(CHANNELS)}")
    with svc.transaction() as conn:
        query = select(events).where(events.c.invoice_id == invoice_id)
        if org_id:
            query = query.where(events.c.org_id == org_id)
        if event_id:
            query = query.where(events.c.event_id == event_id)
        rows = conn.execute(query.order_by(events.c.received_at)).mappings()
        # Upstream events only: herald's own (mandate.setup_requested) are not invoices to notify of.
        stored = [r for r in rows if r["outcome"] != "manual" and r["type"] in EVENT_TYPES]
        if not stored:
            which = f" ({event_id})" if event_id else ""
            raise NotFound(f"no stored event for invoice {invoice_id}{which}")
        payload = stored[-1]["payload"]
        org_id = str(stored[-1]["org_id"])
        org = load_org(conn, org_id, svc.settings.default_region)
        customer = load_customer(conn, org_id, str(stored[-1]["customer_id"]))
        names = greeting_names(conn, org_id, str(stored[-1]["customer_id"]), "")
        overrides = load_overrides(conn, org_id)
    try:  # pure from here: whatever fails, fails the same way again
        event: Event = event_adapter.validate_python(payload)
        chosen = chosen_kind or KIND_OF[event.type]
        lines = build_preview(
            chosen,
            event,
            org,
            customer,
            names=names,
            overrides=overrides,
            default_from=svc.settings.twilio_from,
            channel=channel,
            limits=TemplateLimits.from_settings(svc.settings),
        )
    except Exception as exc:
        if not is_permanent_render_error(exc):
            raise
        raise Invalid(
            f"invoice {invoice_id} cannot be previewed: {render_failure(exc)}", _problems(exc)
        ) from None
    return Prepared(event, chosen, lines)


def _problems(exc: BaseException) -> list[str]:
    if isinstance(exc, TemplateInvalid):
        return [str(p) for p in exc.problems]
    if isinstance(exc, TemplateRenderError):
        return [str(exc.problem)]
    return [render_failure(exc)]


def send_prepared(svc: Services, prepared: Prepared, preview_id: str) -> tuple[str, list[str]]:
    """Send exactly what the preview showed, recorded as a manual event; (its event id, the
    notification ids handed to sending). ``Conflict`` when the preview no longer matches.

    An SMS keeps the previewed text; an email (whose preview shows its subject) is rendered by
    the render stage from the manual event, with the templates the preview was just checked on.
    """
    from schemas.messages import NotificationDecided, NotificationRendered

    digest = prepared.fingerprint
    if digest != preview_id:
        raise Conflict(f"what would be sent changed since preview {preview_id} (now {digest}); preview again")
    source = prepared.event
    manual = source.model_copy(update={"event_id": f"manual-{digest}-{uuid.uuid4().hex[:8]}"})
    items = [
        NewNotification(
            line.contact_id,
            prepared.kind.value,
            line.channel,
            line.recipient,
            line.locale or "en",
            line.reason,
            line.reason == "send",
            line.sender,
        )
        for line in prepared.lines
    ]
    bodies = {
        (line.contact_id, line.recipient): line.text for line in prepared.lines if line.channel == "sms"
    }
    emails: set[str] = set()
    with svc.transaction() as conn:
        record_event(conn, manual, event_to_json(manual), "manual")
        pending = record_notifications(conn, manual, items)
        for nid in pending:
            row = load_notification(conn, nid)
            if row is None:
                continue
            key = (row.contact_id, row.recipient)
            if row.channel == "sms" and key in bodies:  # the previewed text, not a fresh rendering
                store_rendered(conn, nid, bodies[key])
            else:
                emails.add(nid)
    for nid in pending:
        svc.emitter.emit(
            NotificationDecided(notification_id=nid)
            if nid in emails
            else NotificationRendered(notification_id=nid)
        )
    return manual.event_id, pending
