"""One SIGTERM is a graceful stop, however many copies of it a worker process receives."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from dramatiq.middleware import Middleware


class SingleSigterm(Middleware):
    """Makes dramatiq's worker processes take only the first SIGTERM.

    Supervisors (systemd, honcho, Kubernetes) signal the whole process group, and dramatiq's main
    process forwards that SIGTERM to its workers again; dramatiq reads the second copy as "kill now",
    which would cut in-flight messages short. The graceful stop still ends within
    ``--worker-shutdown-timeout``; SIGKILL remains the hard stop.
    """

    def after_process_boot(self, broker: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        original = signal.getsignal(signal.SIGTERM)
        if not callable(original):
            return
        seen = False

        def first_only(signum: int, frame: FrameType | None) -> None:
            nonlocal seen
            if not seen:
                seen = True
                original(signum, frame)

        signal.signal(signal.SIGTERM, first_only)
