"""Manual notify: what would be sent, to whom, at what cost; and a fingerprint of exactly that."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from schemas.directory import CustomerView, OrgView
from schemas.events import Event
from schemas.notifications import Channel, Kind
from schemas.rows import GreetingNames
from workers.rules.recipients import SEND, decide
from workers.rules.render import render_notification
from workers.rules.segments import count_segments
from workers.rules.templates import DEFAULT_LIMITS, TemplateLimits


@dataclass(frozen=True)
class PreviewLine:
    """One recipient of a manual notify: the decision, and the message when it sends."""

    contact_id: str
    channel: str
    recipient: str
    reason: str
    locale: str = ""
    sender: str | None = None
    text: str = ""  # the SMS body, or the email subject
    encoding: str = ""
    characters: int = 0
    segments: int = 0
    cost: int = 0  # SMS credit, in segments


def build_preview(
    kind: Kind,
    event: Event,
    org: OrgView,
    customer: CustomerView | None,
    *,
    names: GreetingNames,
    overrides: dict[tuple[str, str, str, str], str],
    default_from: str | None,
    channel: str | None = None,
    limits: TemplateLimits = DEFAULT_LIMITS,
) -> list[PreviewLine]:
    """Each recipient with its rendered message, encoding, segments and cost, or why it is skipped.

    A template that does not render raises as rendering does (a ``PermanentError`` naming the
    template and the line); the caller says so to whoever asked for the preview.
    """
    routing = decide(kind, "manual", org, customer, default_from=default_from)
    contacts = {c.contact_id: c for c in customer.contacts} if customer else {}
    lines = []
    for d in routing.decisions:
        if channel is not None and d.channel != channel:
            continue
        if d.reason != SEND:
            lines.append(PreviewLine(d.contact_id, d.channel, d.recipient, d.reason))
            continue
        rendered = render_notification(
            kind,
            d.channel,
            event,
            locales=[d.locale, names.org_locale],
            names=replace(names, contact=contacts[d.contact_id].name),
            overrides=overrides,
            limits=limits,
        )
        if d.channel == Channel.SMS:
            body = rendered.parts["body"]
            try:
                segments = count_segments(body)
            except ValueError:
                lines.append(
                    PreviewLine(
                        d.contact_id, d.channel, d.recipient, "body_too_long", rendered.locale, text=body
                    )
                )
                continue
            cost = segments.parts if org.buys_credit else 0
            lines.append(
                PreviewLine(
                    d.contact_id, d.channel, d.recipient, d.reason, rendered.locale, d.sender, body,
                    segments.encoding, len(body), segments.parts, cost,
                )
            )  # fmt: skip
        else:
            lines.append(
                PreviewLine(
                    d.contact_id,
                    d.channel,
                    d.recipient,
                    d.reason,
                    rendered.locale,
                    text=rendered.parts["subject"],
                )
            )
    return lines


def fingerprint(lines: list[PreviewLine]) -> str:
    """A short digest of everything a preview shows: a send refuses anything else."""
    payload = json.dumps([asdict(line) for line in lines], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]
