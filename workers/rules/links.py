"""Links in email: only http(s) URLs go in an ``href`` (or any attribute a client follows).

``javascript:``, ``data:``, ``vbscript:``… are how a link runs something in a client that allows
it; a bill has no use for them. Browsers ignore ASCII whitespace and control characters inside a
scheme (``java\\tscript:``) and entities are decoded before a URL is read (``jav&#x61;script:``),
so both are undone before the scheme is judged.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

#: Schemes a link in an email may have; no scheme at all (``#top``, ``""``) is allowed too.
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
#: Attributes whose value a mail client may load or follow.
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "background", "poster", "xlink:href"})
_IGNORED = re.compile(r"[\x00-\x20\x7f]+")


def safe_url(url: str) -> str:
    """``url`` when it is an absolute http(s) URL, else ``""`` (what templates are given)."""
    # Most URLs have nothing to undo: the check costs a tenth of the substitution.
    cleaned = url if url.isprintable() and " " not in url else _IGNORED.sub("", url)
    parts = urlsplit(cleaned)
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else ""


def _scheme(value: str) -> str:
    cleaned = _IGNORED.sub("", value)
    head = re.split(r"[/?#]", cleaned, maxsplit=1)[0]
    return head.split(":", 1)[0].lower() if ":" in head else ""


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value and (scheme := _scheme(value)) and scheme not in LINK_SCHEMES:
                self.found.append((self.getpos()[0], value))

    handle_startendtag = handle_starttag


def unsafe_links(html: str) -> list[tuple[int, str]]:
    """Each (line, value) of a URL attribute in ``html`` whose scheme is not http, https or mailto."""
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.found
