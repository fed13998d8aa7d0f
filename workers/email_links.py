"""The preference link and the unsubscribe headers every email carries (RFC 2369, RFC 8058).

Added as the message is built, not stored with the rendered text: the link is signed for this
address at send time, so a resend carries a link with a full life ahead of it. Without
``HERALD_LINK_SECRET`` and ``HERALD_PUBLIC_URL`` no link can be made and the email goes as it was
rendered (the email stage warns once).
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import quote

from infra.link_tokens import LinkSigner, preference_url, unsubscribe_url
from infra.settings import Settings
from schemas.rows import NotificationRow

logger = logging.getLogger("herald.email")

#: The footer's words per language (the page's own are in ``producers.api.preference_texts``).
FOOTER = {
    "en": "Choose which emails you get, or unsubscribe",
    "fi": "Valitse, mitä sähköposteja saat, tai peru tilaus",
    "ja": "受け取るメールの選択・配信停止",
}


#: What this process has said already.
_said = {"unlinked": False}


@dataclass(frozen=True)
class Unsubscribe:
    """What one email gets: the page's URL and the headers."""

    page_url: str
    headers: tuple[tuple[str, str], ...]


class EmailLinks:
    """Makes each email's links from the settings (one per batch: it holds nothing but them)."""

    def __init__(self, settings: Settings) -> None:
        self._signer = LinkSigner.from_settings(settings)
        self._base = settings.public_url
        mailbox = settings.unsubscribe_mailto or parseaddr(settings.smtp_from or "")[1]
        self._mailto = mailbox or None
        if (self._signer is None or not self._base) and not _said["unlinked"]:
            _said["unlinked"] = True  # once per process, not once per batch
            logger.warning(
                "emails go without a preference link: set HERALD_LINK_SECRET and HERALD_PUBLIC_URL"
            )

    def for_row(self, row: NotificationRow) -> Unsubscribe | None:
        """The links of one email notification, or ``None`` when links are not configured."""
        if self._signer is None or not self._base:
            return None
        token = self._signer.sign(row.org_id, row.contact_id, row.recipient)
        one_click = unsubscribe_url(self._base, row.org_id, token, row.kind)
        targets = [f"<{one_click}>"]
        if self._mailto:
            subject = quote(f"unsubscribe {row.org_id} {row.kind}", safe="")
            targets.append(f"<mailto:{self._mailto}?subject={subject}>")
        headers = (
            ("List-Unsubscribe", ", ".join(targets)),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )
        return Unsubscribe(preference_url(self._base, row.org_id, token), headers)


def with_footer(text: str, body_html: str, url: str, locale: str) -> tuple[str, str]:
    """The plain and HTML parts with the preference link at the end."""
    words = FOOTER.get(locale.split("-")[0].lower(), FOOTER["en"])
    text_out = f"{text.rstrip()}\n\n--\n{words}: {url}\n"
    link = (
        '<p style="font-size:12px;color:#666">'
        f'<a href="{html.escape(url, quote=True)}">{html.escape(words)}</a></p>'
    )
    lower = body_html.lower()
    at = lower.rfind("</body>")
    html_out = body_html[:at] + link + body_html[at:] if at >= 0 else body_html + link
    return text_out, html_out
