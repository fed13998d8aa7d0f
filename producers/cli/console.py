"""Shared console helpers for the CLI, and what a refused operation prints and exits with."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from infra.errors import Invalid, Refused

# Piped output is read by tools and people grepping for ids: never fold it at 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)

#: The exit code of a refused operation (``infra.errors.Refused``: not found, invalid, conflict,
#: …). An argument that names nothing valid is typer's usage error instead: exit 2.
EXIT_REFUSED = 1


def interactive() -> bool:
    """Whether a person is watching (progress bars only then)."""
    return sys.stderr.isatty()


@contextmanager
def refusals(*, usage: bool = False) -> Iterator[None]:
    """Run an operation for a command: a refusal is printed (``error: …``, then each of its
    details) and the command exits ``EXIT_REFUSED``. With ``usage``, an ``Invalid`` without
    details names a wrong argument of the command: typer's usage error (exit 2)."""
    try:
        yield
    except Refused as exc:
        if usage and isinstance(exc, Invalid) and not exc.details:
            raise typer.BadParameter(exc.message) from None
        for line in (exc.message, *exc.details):
            err.print(f"error: {line}", markup=False)
        raise typer.Exit(EXIT_REFUSED) from None
