"""The official ``gocardless-pro`` client, built from settings (the one place that builds it).

Adapters for collection and for sync wrap this client; nothing builds it at import time.
"""

from __future__ import annotations

import gocardless_pro

from infra.errors import ConfigurationError
from infra.settings import Settings


def build_gocardless_client(settings: Settings, *, timeout: float = 30.0) -> gocardless_pro.Client:
    """A client for ``HERALD_GOCARDLESS_BASE_URL`` with ``HERALD_GOCARDLESS_ACCESS_TOKEN``.

    Idempotency conflicts raise (``raise_on_idempotency_conflict``) so herald decides what an
    existing resource means, rather than the client silently fetching it.
    """
    if settings.gocardless_access_token is None:
        raise ConfigurationError("missing setting(s): HERALD_GOCARDLESS_ACCESS_TOKEN")
    return gocardless_pro.Client(
        access_token=settings.gocardless_access_token.get_secret_value(),
        base_url=settings.gocardless_base_url,
        raise_on_idempotency_conflict=True,
        timeout=timeout,
    )
