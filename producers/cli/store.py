"""Opening the store from the CLI (migrations applied on start, like the workers)."""

from __future__ import annotations

from infra.bootstrap import Services
from producers.cli import context


def open_store() -> Services:
    """This command's services, booted on first use from the settings its root callback read, and
    shut down when the command ends."""
    return context.services()
