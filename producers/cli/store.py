"""Opening the store from the CLI (migrations applied on start, like the workers)."""

from __future__ import annotations

from infra.bootstrap import Services, bootstrap
from infra.settings import get_settings


def open_store() -> Services:
    """The booted services of this CLI process."""
    return bootstrap(get_settings())
