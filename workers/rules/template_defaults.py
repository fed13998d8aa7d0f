"""The templates herald ships (``templates.json`` beside this file): every kind, SMS and email,
in English, Finnish and Japanese. Keyed ``(kind, channel, locale) -> {part: source}``: SMS has
``body``; email has ``subject``, ``text`` and ``html``. Organisations override any of them.
"""

from __future__ import annotations

import json
from pathlib import Path

PARTS: dict[str, tuple[str, ...]] = {"sms": ("body",), "email": ("subject", "text", "html")}
LOCALES: tuple[str, ...] = ("en", "fi", "ja")


def _load() -> dict[tuple[str, str, str], dict[str, str]]:
    data = json.loads((Path(__file__).parent / "templates.json").read_text(encoding="utf-8"))
    return {(t["kind"], t["channel"], t["locale"]): dict(t["parts"]) for t in data["templates"]}


DEFAULTS = _load()
