"""Template operations: list, read, save (checked first) and switch kinds on or off."""

from __future__ import annotations

import re
from typing import Any

from infra.bootstrap import Services
from infra.errors import Invalid, NotFound
from infra.store.organisations import org_settings, update_org
from infra.store.templates import load_overrides, save_override
from workers.rules.render import base_kind
from workers.rules.template_defaults import DEFAULTS, PARTS
from workers.rules.templates import CONTEXT, TemplateLimits, check_for_save, template_name

# A reminder offset's own templates: payment_reminder.KEY (see ``herald orgs reminders set``).
_VARIANT = re.compile(r"^payment_reminder\.[a-z0-9_-]{1,20}$")
# Templates are chosen by the language of a contact's locale (fi-FI → fi): a language code.
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def validate_kind(kind: str, channel: str, part: str | None = None) -> None:
    """Raise ``Invalid`` unless ``kind``, ``channel`` (and ``part``) name a template."""
    if kind not in CONTEXT and not _VARIANT.fullmatch(kind):
        raise Invalid(
            f"kind {kind!r}: expected one of {', '.join(CONTEXT)}, or payment_reminder.KEY "
            "(KEY: 1-20 of a-z 0-9 _ -)"
        )
    if channel not in PARTS:
        raise Invalid(f"channel {channel!r}: expected one of {', '.join(PARTS)}")
    if part is not None and part not in PARTS[channel]:
        raise Invalid(f"part {part!r}: {channel} templates have {', '.join(PARTS[channel])}")


def list_templates(svc: Services, org_id: str | None) -> list[dict[str, Any]]:
    """Every template: kind, channel, locale, shipped or the organisation's own, enabled."""
    overrides: dict[tuple[str, str, str, str], str] = {}
    disabled: set[str] = set()
    if org_id:
        with svc.reading() as conn:
            overrides = load_overrides(conn, org_id)
            disabled = set(org_settings(conn, org_id)["disabled_templates"])
    keys = sorted(set(DEFAULTS) | {(k, c, loc) for k, c, loc, _ in overrides})
    return [
        {
            "kind": kind,
            "channel": channel,
            "locale": locale,
            "source": "organisation"
            if any(key[:3] == (kind, channel, locale) for key in overrides)
            else "shipped",
            "enabled": f"{kind}:{channel}" not in disabled,
        }
        for kind, channel, locale in keys
    ]


def template_parts(svc: Services, org_id: str | None, kind: str, channel: str, locale: str) -> dict[str, str]:
    """The parts as they will be used (the organisation's own, else shipped); ``NotFound`` if none."""
    validate_kind(kind, channel)
    overrides: dict[tuple[str, str, str, str], str] = {}
    if org_id:
        with svc.reading() as conn:
            overrides = load_overrides(conn, org_id)
    parts = dict(DEFAULTS.get((kind, channel, locale), {}))
    parts.update({p: s for (k, c, loc, p), s in overrides.items() if (k, c, loc) == (kind, channel, locale)})
    if not parts:
        raise NotFound(f"no {kind}.{channel} template in locale {locale!r}")
    return {part: parts[part] for part in PARTS[channel] if part in parts}


def save_template(
    svc: Services, org_id: str, kind: str, channel: str, locale: str, part: str, source: str
) -> str:
    """Check a template and save it as the organisation's own; its name. ``Invalid`` lists each
    problem (line and what) and saves nothing: what render would refuse (its size, a variable
    the kind lacks, a sandbox escape or alias, a limit its trial render meets) is refused here."""
    validate_kind(kind, channel, part)
    if not _LANGUAGE.fullmatch(locale):
        raise Invalid(
            f"locale {locale[:20]!r}: a template's locale is a language code of 2-3 lower-case "
            "letters (fi, en, ja); contacts in fi-FI get the fi template"
        )
    name = template_name(kind, channel, locale, part)
    limits = TemplateLimits.from_settings(svc.settings)
    problems = check_for_save(source, base_kind(kind), name, part, limits=limits)
    if problems:
        raise Invalid(f"template {name} has {len(problems)} problem(s)", [str(p) for p in problems])
    with svc.transaction() as conn:
        save_override(conn, org_id, (kind, channel, locale, part), source)
    return name


def switch_template(svc: Services, org_id: str, kind: str, channel: str, on: bool) -> None:
    """Switch a kind on or off for a channel, organisation-wide (off: skipped as template_disabled)."""
    validate_kind(kind, channel)
    if kind not in CONTEXT:
        raise Invalid(f"kind {kind!r}: switch the kind ({base_kind(kind)}), not a variant")
    with svc.transaction() as conn:
        disabled = set(org_settings(conn, org_id)["disabled_templates"])
        (disabled.discard if on else disabled.add)(f"{kind}:{channel}")
        update_org(conn, org_id, {"disabled_templates": sorted(disabled)})
