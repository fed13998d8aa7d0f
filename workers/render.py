"""Stage ``render``: the text of a notification, rendered once and kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.bootstrap import Services
from infra.errors import MalformedMessage
from infra.retry_policy import is_permanent_render_error
from infra.store.notifications import (
    load_event_payload,
    load_notification,
    store_rendered,
    store_rendered_email,
)
from infra.store.templates import greeting_names, load_overrides
from schemas.events import event_adapter
from schemas.messages import (
    DeliveryStatusReported,
    EmailRendered,
    NotificationDecided,
    NotificationRendered,
)
from schemas.notifications import Channel, Kind, Status
from workers.decode import decode
from workers.rules.collection import authorisation_url_of
from workers.rules.render import Rendered, TemplateInvalid, render_failure, render_mandate_setup
from workers.rules.render import render_notification as render_parts
from workers.rules.templates import TemplateLimits, TemplateRenderError


def render_notification(svc: Services, body: Any) -> None:
    """Decode → render (pure) → store the text → emit it to the sender.

    Idempotent: a notification keeps the first text rendered for it, so a
    retry sends exactly what was rendered. What cannot be rendered (a template
    problem or limit, an amount that cannot be shown, a stored event that no
    longer validates) is recorded ``failed`` with its reason and never retried
    (``infra.retry_policy.is_permanent_render_error``).
    """
    message = decode(NotificationDecided, body)
    nid = message.notification_id
    failure: str | None = None
    limits = TemplateLimits.from_settings(svc.settings)
    with svc.transaction() as conn:
        row = load_notification(conn, nid)
        if row is None:
            raise MalformedMessage(f"unknown notification {nid}")
        if row.status != Status.PENDING:
            return
        channel = row.channel
        if channel not in (Channel.SMS, Channel.EMAIL):
            raise MalformedMessage(f"{nid}: render has no sender for channel {channel!r}")
        if row.body is None:
            payload = load_event_payload(conn, row.org_id, row.event_id)
            names = greeting_names(conn, row.org_id, row.customer_id, row.contact_id)
            locales = [row.locale, names.org_locale]
            overrides = load_overrides(conn, row.org_id)
            try:
                rendered: Rendered
                if row.kind == Kind.MANDATE_SETUP:
                    # herald's own event (collect asked for a mandate): the link is in its payload.
                    url = authorisation_url_of(payload or {})
                    rendered = render_mandate_setup(
                        channel, url, locales=locales, names=names, overrides=overrides, limits=limits
                    )
                else:
                    event = event_adapter.validate_python(payload)
                    rendered = render_parts(
                        row.kind,
                        channel,
                        event,
                        locales=locales,
                        names=names,
                        overrides=overrides,
                        limits=limits,
                    )
            except Exception as exc:  # the pure render only: the store calls are outside the try
                if not is_permanent_render_error(exc):
                    raise
                template = isinstance(exc, TemplateInvalid | TemplateRenderError)
                failure = f"{'template' if template else 'cannot render'}: {render_failure(exc)}"
            else:
                if channel == Channel.EMAIL:
                    parts = rendered.parts
                    store_rendered_email(conn, nid, parts["subject"], parts["text"], parts["html"])
                else:
                    store_rendered(conn, nid, rendered.parts["body"])
    if failure is not None:
        # Permanent: recorded as failed with the reason; retrying would render the same problem.
        svc.emitter.emit(
            DeliveryStatusReported(
                notification_id=nid,
                status=Status.FAILED,
                source="render",
                occurred_at=datetime.now(UTC),
                detail=failure[:500],
            )
        )
        return
    svc.emitter.emit(
        EmailRendered(notification_id=nid)
        if channel == Channel.EMAIL
        else NotificationRendered(notification_id=nid)
    )
