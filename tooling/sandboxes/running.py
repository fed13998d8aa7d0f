"""Running a sandbox as a process: serve until SIGTERM or Ctrl-C (``herald sandbox …``)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

S = TypeVar("S")


def serve_until_stopped(sandbox: AbstractContextManager[S], banner: Callable[[S], str]) -> None:
    """Start ``sandbox``, print ``banner(sandbox)`` once it is ready, and serve until SIGTERM or
    Ctrl-C; the previous SIGTERM handler is restored on the way out."""
    stopped = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    try:
        with sandbox as started:
            sys.stdout.write(banner(started))
            sys.stdout.flush()
            while not stopped.wait(0.5):  # wakes so the SIGTERM handler runs (main thread only)
                pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
