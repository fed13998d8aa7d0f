"""Fixtures for the GoCardless tests: the sandbox, herald's settings pointing at it, a fresh store.

Every test module in this folder gets them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infra.bootstrap import Services, bootstrap, shutdown
from infra.settings import get_settings
from tooling.sandboxes.gocardless import GoCardlessConfig, GoCardlessSandbox

TOKEN = "gc_sandbox_token"
SECRET = "gc-webhook-secret"


@pytest.fixture
def gc_sandbox() -> Iterator[GoCardlessSandbox]:
    """The GoCardless sandbox; no webhook URL until a test sets ``webhook_url``."""
    with GoCardlessSandbox(GoCardlessConfig(TOKEN, SECRET, webhook_retry_seconds=0.05)) as sandbox:
        yield sandbox


@pytest.fixture
def gc_env(
    gc_sandbox: GoCardlessSandbox, configured_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[GoCardlessSandbox]:
    """This process's settings (``get_settings()``, an in-process ``herald`` command) point at the
    test broker and the GoCardless sandbox (ask for it before ``pipeline``)."""
    monkeypatch.setenv("HERALD_GOCARDLESS_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("HERALD_GOCARDLESS_BASE_URL", gc_sandbox.url)
    monkeypatch.setenv("HERALD_GOCARDLESS_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    yield gc_sandbox
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def pipeline_fields(gc_sandbox: GoCardlessSandbox) -> dict[str, Any]:
    """A pipeline here talks to this folder's GoCardless sandbox, as ``gc_env`` points the process."""
    return {
        "gocardless_access_token": TOKEN,
        "gocardless_base_url": gc_sandbox.url,
        "gocardless_webhook_secret": SECRET,
    }


@pytest.fixture
def gc_services(
    gc_env: GoCardlessSandbox, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    """herald's process settings pointing at the sandbox and a fresh store (each kind), booted."""
    monkeypatch.setenv("HERALD_DATABASE_URL", database_url)
    get_settings.cache_clear()
    services = bootstrap(get_settings())
    yield services
    shutdown(services)
    monkeypatch.undo()
    get_settings.cache_clear()
