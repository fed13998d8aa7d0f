"""Signed links to a contact's preference page (and its one-click unsubscribe URL).

A token names the organisation, the contact and the address it was sent to, when it expires and
a random token id; it is signed with HMAC-SHA256 under a named key. The address is named by a
keyed digest, not in clear: a link that ends up in a log or a proxy's history gives no address
away (and ``infra.masking`` hides the whole token in our own logs)::

    <key id>.<payload, base64url JSON>.<signature, base64url>

The key id says which secret signed it, so ``HERALD_LINK_SECRET`` can be replaced while links
signed with the old one keep opening (``HERALD_LINK_PREVIOUS_SECRETS``) until they expire. A token
is never a database id alone: without the secret nobody can make one, change one, or stretch its
life. The organisation is checked against the URL's, so one organisation's link never opens
another's page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from infra.errors import HeraldError
from infra.settings import Settings

#: Domain separation: a signature over anything else herald signs never passes for a link's.
_CONTEXT = b"herald-link.v1."
#: Longest token accepted before any work is done on it (a URL path segment).
MAX_TOKEN_CHARS = 2000

Problem = Literal["malformed", "unknown_key", "bad_signature", "expired", "wrong_organisation"]


class LinkError(HeraldError):
    """A token that opens nothing; ``problem`` says why (never shown with any data)."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem: Problem = problem


@dataclass(frozen=True)
class LinkClaims:
    """What a verified token names."""

    org_id: str
    contact_id: str
    address_digest: str  # a keyed digest of the address (``LinkSigner.address_of`` matches it)
    expires_at: int  # epoch seconds
    token_id: str
    key_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Signs with the current key; verifies with it or any previous one."""

    def __init__(
        self, key_id: str, secret: bytes, *, previous: dict[str, bytes] | None = None, ttl_days: int = 90
    ) -> None:
        if not secret:
            raise ValueError("a link secret must not be empty")
        self.key_id = key_id
        self._keys = {**(previous or {}), key_id: secret}
        self.ttl_seconds = ttl_days * 86400

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkSigner | None:
        """The signer ``HERALD_LINK_*`` describe; ``None`` without ``HERALD_LINK_SECRET``."""
        if settings.link_secret is None or not settings.link_secret.get_secret_value():
            return None
        previous: dict[str, bytes] = {}
        if settings.link_previous_secrets is not None:
            for item in settings.link_previous_secrets.get_secret_value().split(","):
                kid, sep, secret = item.strip().partition("=")
                if sep and kid and secret:
                    previous[kid] = secret.encode()
        return cls(
            settings.link_key_id,
            settings.link_secret.get_secret_value().encode(),
            previous=previous,
            ttl_days=settings.link_ttl_days,
        )

    def _sign(self, key_id: str, payload: str) -> str:
        mac = hmac.new(self._keys[key_id], _CONTEXT + f"{key_id}.{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def _digest(self, key_id: str, address: str) -> str:
        mac = hmac.new(self._keys[key_id], b"herald-link-address." + address.lower().encode(), hashlib.sha256)
        return _b64(mac.digest()[:12])

    def sign(self, org_id: str, contact_id: str, address: str, *, now: float | None = None) -> str:
        """A token for ``address`` of ``contact_id`` in ``org_id``, valid for the configured days."""
        expires = int((time.time() if now is None else now) + self.ttl_seconds)
        digest = self._digest(self.key_id, address)
        claims = {"o": org_id, "c": contact_id, "a": digest, "x": expires, "t": secrets.token_urlsafe(9)}
        payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{self.key_id}.{payload}.{self._sign(self.key_id, payload)}"

    def verify(self, token: str, *, org_id: str | None = None, now: float | None = None) -> LinkClaims:
        """The claims of a genuine, unexpired token (of ``org_id`` when given); ``LinkError``
        otherwise."""
        if len(token) > MAX_TOKEN_CHARS or not token.isascii() or token.count(".") != 2:
            raise LinkError("malformed", "not a herald link")
        key_id, payload, signature = token.split(".")
        if key_id not in self._keys:
            raise LinkError("unknown_key", "the link was signed with a key that is no longer known")
        if not hmac.compare_digest(signature, self._sign(key_id, payload)):
            raise LinkError("bad_signature", "the link has been changed")
        try:
            claims = json.loads(_unb64(payload))
            parsed = LinkClaims(
                org_id=str(claims["o"]),
                contact_id=str(claims["c"]),
                address_digest=str(claims["a"]),
                expires_at=int(claims["x"]),
                token_id=str(claims["t"]),
                key_id=key_id,
            )
        except (ValueError, KeyError, TypeError, binascii.Error):  # signed by us, so never expected
            raise LinkError("malformed", "not a herald link") from None
        if parsed.expires_at < (time.time() if now is None else now):
            raise LinkError("expired", "the link has expired")
        if org_id is not None and parsed.org_id != org_id:
            raise LinkError("wrong_organisation", "the link belongs to another organisation")
        return parsed

    def address_of(self, claims: LinkClaims, candidates: Iterable[str]) -> str | None:
        """Which of ``candidates`` (the contact's addresses) the verified token was sent to."""
        if claims.key_id not in self._keys:
            return None
        return next(
            (
                a
                for a in candidates
                if hmac.compare_digest(self._digest(claims.key_id, a), claims.address_digest)
            ),
            None,
        )


#: Where the api serves the preference page: ``/preferences/<org id>/<token>``.
PREFERENCES_PATH = "/preferences"


def preference_url(base_url: str, org_id: str, token: str) -> str:
    """The page's absolute URL for a token (``base_url`` is ``HERALD_PUBLIC_URL``)."""
    return f"{base_url.rstrip('/')}{PREFERENCES_PATH}/{quote(org_id, safe='')}/{token}"


def unsubscribe_url(base_url: str, org_id: str, token: str, kind: str) -> str:
    """The one-click unsubscribe URL (RFC 8058) for an email of ``kind``."""
    return f"{preference_url(base_url, org_id, token)}/unsubscribe?kind={quote(kind, safe='')}"
