"""Shared console helpers for the CLI."""

from __future__ import annotations

import sys

from rich.console import Console

# Piped output is read by tools and people grepping for ids: never fold it at 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def interactive() -> bool:
    """Whether a person is watching (progress bars only then)."""
    return sys.stderr.isatty()
