"""This invocation's settings and services: read once, by the ``herald`` root callback, and
handed down to the commands.

The root callback (``producers.cli``) reads the settings (or takes those a caller running the
CLI in-process gives as ``obj``: ``CliRunner().invoke(app, args, obj=settings)``) and opens the
invocation with them; the command takes them from here, and its services are booted on first use
and shut down when the command ends. Nothing in the CLI reads the environment itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from infra.bootstrap import BootOnce, Services
from infra.settings import Settings


@dataclass
class Invocation:
    """One ``herald`` command: its settings, and its services once booted."""

    settings: Settings
    boot: BootOnce


_current: Invocation | None = None


def begin(settings: Settings) -> None:
    """Open the invocation (the root callback, once per command)."""
    global _current
    end()
    _current = Invocation(settings, BootOnce(settings))


def end() -> None:
    """Close the invocation: its services, if booted, are shut down."""
    global _current
    invocation, _current = _current, None
    if invocation is not None:
        invocation.boot.shutdown()


@contextmanager
def invocation(settings: Settings) -> Iterator[None]:
    """``begin`` … ``end`` around a command run outside the CLI's own callback."""
    begin(settings)
    try:
        yield
    finally:
        end()


def _open() -> Invocation:
    if _current is None:
        raise RuntimeError("no herald invocation: the root callback opens one with its settings")
    return _current


def settings() -> Settings:
    """The settings of the running ``herald`` command."""
    return _open().settings


def services() -> Services:
    """The running command's services, booted on first use from its settings."""
    return _open().boot()
