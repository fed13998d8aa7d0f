"""What the sandbox tests share: a local endpoint recording the webhooks a sandbox sends, and a
sandbox's ``serve`` run as a process of its own."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, TypeVar


class PostRecorder:
    """A local endpoint that keeps what ``record`` makes of each POST in ``posts`` and answers
    the status ``answer`` gives (204 unless a subclass says otherwise); ``recording`` serves it."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.posts.append(recorder.record(self, body))
                self.send_response(recorder.answer())
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def record(self, request: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
        """What to keep of one POST."""
        raise NotImplementedError

    def answer(self) -> int:
        """The status of the answer to the next POST."""
        return 204


Recorder = TypeVar("Recorder", bound=PostRecorder)


@contextmanager
def recording(recorder: Recorder) -> Iterator[Recorder]:
    """``recorder`` served on a thread of its own meanwhile."""
    thread = threading.Thread(target=recorder.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield recorder
    recorder.server.shutdown()
    recorder.server.server_close()


@contextmanager
def served(command: list[str], **popen: Any) -> Iterator[IO[str]]:
    """``command`` (a sandbox's ``serve``) as a process of its own, its stdout read as text. When
    the block ends it must stop on SIGTERM with status 0; a failed assertion never leaves it
    running."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, **popen) as process:
        try:
            assert process.stdout is not None
            yield process.stdout
            process.terminate()
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:  # a failed assertion must not leave it running
                process.kill()


@contextmanager
def serving(sandbox: str, config: str, *args: object) -> Iterator[str]:
    """``tooling.sandboxes.<sandbox>.serve(<config>(*args), "127.0.0.1", 0)`` as a process of its
    own (``served``); the URL its first line says it listens on."""
    code = (
        f"from tooling.sandboxes.{sandbox} import {config}, serve\n"
        f"serve({config}(*{args!r}), '127.0.0.1', 0)\n"
    )
    with served([sys.executable, "-c", code]) as stdout:
        line = stdout.readline().strip()
        assert line.startswith(f"{sandbox} sandbox listening on http://127.0.0.1:")
        yield line.rsplit(" ", 1)[1]
