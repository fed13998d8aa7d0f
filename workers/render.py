"""Stage ``render``: the text of a notification, rendered once and kept.

Notifications come in batches (``NotificationsDecided``): one read of every row with its stored
event, and of every name and template override the batch needs; each rendered on its own (an
event's notifications validate it once); every text stored in one write transaction after that,
then one confirmed message on to each sender (``NotificationsRendered``, ``EmailsRendered``) and
one to history for what could not be rendered. A single ``NotificationDecided`` is a batch of one
through the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from infra.bootstrap import Services
from infra.errors import MalformedMessage
from infra.retry_policy import is_permanent_render_error
from infra.store.batches import unique
from infra.store.notifications import store_rendered_emails_many, store_rendered_many
from infra.store.rendering import ToRender, load_to_render
from infra.store.templates import load_overrides_many
from schemas.events import Event, event_adapter
from schemas.messages import (
    DeliveryStatusesReported,
    EmailsRendered,
    NotificationDecided,
    NotificationsDecided,
    NotificationsRendered,
)
from schemas.notifications import Channel, Kind, Status
from workers.batches import dead_letter_item
from workers.decode import decode
from workers.rules.collection import authorisation_url_of
from workers.rules.render import Rendered, TemplateInvalid, render_failure, render_mandate_setup
from workers.rules.render import render_notification as render_parts
from workers.rules.templates import TemplateLimits, TemplateRenderError
from workers.sms_links import with_sms_links

logger = logging.getLogger("herald.render")


@dataclass
class _Outcome:
    """What rendering a batch came to, by notification id."""

    sms: list[str] = field(default_factory=list)  # rendered (now or before): on to the sms stage
    email: list[str] = field(default_factory=list)  # rendered: on to the email stage
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason): reported failed
    malformed: list[tuple[str, MalformedMessage]] = field(default_factory=list)  # not ours to render


def render_notification(svc: Services, body: Any) -> None:
    """One notification: a batch of one (``render_notifications``). An unknown one fails its
    message, which is dead-lettered at once (a permanent error)."""
    nid = decode(NotificationDecided, body).notification_id
    for _nid, exc in _render(svc, [nid]):
        raise exc


def render_notifications(svc: Services, body: Any) -> None:
    """Decode → render each (pure) → store every text, in one transaction → emit them to their
    senders, in batches.

    Idempotent: a notification keeps the first text rendered for it, so a retry sends exactly
    what was rendered; one no longer pending is left alone. What cannot be rendered (a template
    problem or limit, an amount that cannot be shown, a stored event that no longer validates) is
    reported ``failed`` with its reason and never retried (``is_permanent_render_error``). An
    unknown notification, or one of a channel render has no sender for, is dead-lettered alone
    (as a ``notification.decided`` of its own, with its reason); the rest of the batch goes on.
    """
    ids = decode(NotificationsDecided, body).notification_ids
    for nid, exc in _render(svc, ids):  # after the rest went on
        dead_letter_item(
            svc, NotificationDecided.stage, NotificationDecided.actor, {"notification_id": nid}, exc
        )


def _render(svc: Services, ids: Sequence[str]) -> list[tuple[str, MalformedMessage]]:
    """Render ``ids`` (read in one transaction, stored in one more), then hand them on; returns the
    malformed ones (unknown, or of a channel without a sender), which nothing was done for."""
    ids = unique(ids)
    limits = TemplateLimits.from_settings(svc.settings)
    outcome = _Outcome()
    # Read and render before the write transaction: on SQLite every stage waits for the one write
    # lock, and rendering is this stage's CPU. Storing keeps the first text of each notification,
    # so a redelivery that rendered it again meanwhile changes nothing.
    with svc.reading() as conn:
        rows = load_to_render(conn, ids)
        todo: list[ToRender] = []
        for nid in ids:
            row = rows.get(nid)
            if row is None:
                outcome.malformed.append((nid, MalformedMessage(f"unknown notification {nid}")))
            elif row.status != Status.PENDING:
                continue  # sent, skipped or failed since: nothing to render or hand on
            elif row.channel not in (Channel.SMS, Channel.EMAIL):
                reason = f"{nid}: render has no sender for channel {row.channel!r}"
                outcome.malformed.append((nid, MalformedMessage(reason)))
            else:
                todo.append(row)
        fresh = [row for row in todo if not row.rendered]  # a redelivery keeps the first text
        overrides = load_overrides_many(conn, (r.org_id for r in fresh))
        texts: list[tuple[str, str]] = []
        emails: list[tuple[str, str, str, str]] = []
        failed: set[str] = set()
        events: dict[tuple[str, str], Event | Exception] = {}  # an event's notifications share it
        for row in fresh:
            try:
                rendered = _render_one(row, events, overrides, limits)
            except Exception as exc:  # the pure render only: the store calls are outside the try
                if not is_permanent_render_error(exc):
                    raise
                template = isinstance(exc, TemplateInvalid | TemplateRenderError)
                reason = f"{'template' if template else 'cannot render'}: {render_failure(exc)}"
                outcome.failed.append((row.id, reason))
                failed.add(row.id)
                continue
            if row.channel == Channel.EMAIL:
                parts = rendered.parts
                emails.append((row.id, parts["subject"], parts["text"], parts["html"]))
            else:
                texts.append((row.id, rendered.parts["body"]))
    if texts or emails:
        with svc.transaction() as conn:
            store_rendered_many(conn, with_sms_links(conn, svc.settings, rows, texts))
            store_rendered_emails_many(conn, emails)
    for row in todo:
        if row.id not in failed:
            (outcome.email if row.channel == Channel.EMAIL else outcome.sms).append(row.id)
    _hand_on(svc, outcome)
    return outcome.malformed


def _render_one(
    row: ToRender,
    events: dict[tuple[str, str], Event | Exception],
    overrides: dict[str, dict[Any, str]],
    limits: TemplateLimits,
) -> Rendered:
    """One notification's parts (pure, from what the batch read); ``events`` remembers each stored
    event validated (or why it did not validate) for the batch's other notifications of it."""
    greeting = row.names
    locales = [row.locale, greeting.org_locale]
    own = overrides[row.org_id]
    if row.kind == Kind.MANDATE_SETUP:
        # herald's own event (collect asked for a mandate): the link is in its payload.
        url = authorisation_url_of(row.payload or {})
        return render_mandate_setup(
            row.channel, url, locales=locales, names=greeting, overrides=own, limits=limits
        )
    key = (row.org_id, row.event_id)
    if key not in events:
        try:
            events[key] = event_adapter.validate_python(row.payload)
        except Exception as exc:  # the same for each notification of the event: judged by the caller
            events[key] = exc
    event = events[key]
    if isinstance(event, Exception):
        raise event
    return render_parts(
        row.kind, row.channel, event, locales=locales, names=greeting, overrides=own, limits=limits
    )


def _hand_on(svc: Services, outcome: _Outcome) -> None:
    """After the commit: the rendered to their senders, the failures to history (permanent: retrying
    would render the same problem), one confirmed message per batch of each."""
    size = svc.settings.batch_size
    emitter = svc.emitter
    emitter.emit_batches(NotificationsRendered, outcome.sms, size)
    emitter.emit_batches(EmailsRendered, outcome.email, size)
    now = datetime.now(UTC).isoformat()
    reports = []
    for nid, reason in outcome.failed:  # the reason is kept in history, with the report
        reports.append(
            {
                "notification_id": nid,
                "status": Status.FAILED.value,
                "source": "render",
                "occurred_at": now,
                "detail": reason[:500],
            }
        )
    emitter.emit_batches(DeliveryStatusesReported, reports, size)
    logger.info(
        "notifications rendered",
        extra={"sms": len(outcome.sms), "email": len(outcome.email), "failed": len(outcome.failed)},
    )
