"""Shared console helpers for the CLI."""

from __future__ import annotations

import sys

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def interactive() -> bool:
    """Whether a person is watching (progress bars only then)."""
    return sys.stderr.isatty()
