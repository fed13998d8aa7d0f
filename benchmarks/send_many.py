"""Batch sends: ``send_many`` against one ``send`` after another, for SMS (Twilio) and email (SMTP).

The adapters run in this process; the sandbox runs in a process of its own (a real provider is
another machine, and a sandbox in this process would take this process's CPU and GIL). For each
channel, in the same run (the machine is shared and noisy: the ratios are the figures):

- SMS: ``send`` in a loop with keep-alive off (``keepalive_idle=0``: a connection per message);
  ``send`` in a loop over one kept-alive connection (as the ``sms`` stage sends today, one thread);
  ``send_many`` of the whole batch on the adapter's pool (``--sms-concurrency``);
- email: ``send`` in a loop, a connection per message (as the ``email`` stage sends today);
  ``send_many`` on one thread (one kept connection); ``send_many`` on the pool
  (``--email-concurrency``).

The ratio printed is ``send_many`` on the pool against what the stage does today.

Each row: sends/s (wall clock), CPU ms per send of this process (every thread of it, the sandbox's
excluded) and the TCP connections the sandbox accepted during it (the pools' connections are
opened by a warm-up batch first, as a running stage's would be). Not a test: it asserts nothing.

    python benchmarks/send_many.py [--sms 500] [--emails 200] [--sms-concurrency 16]
        [--email-concurrency 4] [--latency-ms 0 --latency-ms 50]

The sandboxes answer at once by default; ``--latency-ms`` makes them take that long per message,
as a provider across a network does: with no latency the figures are this machine's CPU (the
sandbox's included, on the other core), with some they show what concurrency buys.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SID = "AC" + "c" * 32
TOKEN = "bench-auth-token"  # the local sandbox's, not a real secret
SENDER = "+15005550006"
FROM = "billing@acme.example"


# -- the sandboxes, each in its own process -----------------------------------------------------


def _sandbox_main(kind: str, latency: float, pipe: Connection) -> None:
    """Serve one sandbox that answers each message after ``latency`` seconds; answer "stats" with
    (connections, messages) until "stop"."""
    import logging

    logging.disable(logging.INFO)  # the sandboxes log each message at INFO
    sandbox: Any
    if kind == "twilio":
        from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox

        sandbox = TwilioSandbox(SandboxConfig(SID, TOKEN))
        sandbox.faults.delay_seconds = latency  # before each create's answer
        sandbox.start()
        pipe.send(sandbox.url)
        count: Callable[[], int] = lambda: len(sandbox.messages())  # noqa: E731
    else:
        from tooling.sandboxes.smtp import SmtpSandbox

        sandbox = SmtpSandbox(delay_seconds=latency)  # before the answer to DATA
        sandbox.start()
        pipe.send(f"{sandbox.host}:{sandbox.port}")
        count = lambda: len(sandbox.messages)  # noqa: E731
    while pipe.poll(600):  # none for 10 minutes: the benchmark is gone
        if pipe.recv() != "stats":
            break
        pipe.send((sandbox.connections, count()))
    sandbox.stop()


class Sandbox:
    """A sandbox process: its address, and what it saw."""

    def __init__(self, kind: str, latency: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=_sandbox_main, args=(kind, latency, child), daemon=True)
        self.kind = kind
        self.address = ""

    def __enter__(self) -> Sandbox:
        self.process.start()
        if not self._pipe.poll(30):
            raise RuntimeError(f"the {self.kind} sandbox did not start")
        self.address = self._pipe.recv()
        return self

    def stats(self) -> tuple[int, int]:
        """(TCP connections accepted, messages kept) so far."""
        self._pipe.send("stats")
        if not self._pipe.poll(60):
            raise RuntimeError(f"the {self.kind} sandbox did not answer")
        connections, messages = self._pipe.recv()
        return int(connections), int(messages)

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(OSError):
            self._pipe.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)


# -- measuring ----------------------------------------------------------------------------------


def measure(name: str, sandbox: Sandbox, count: int, run: Callable[[], list[Any]]) -> dict[str, Any]:
    """Run one way of sending ``count`` messages; what it cost and what the sandbox saw."""
    connections_before, messages_before = sandbox.stats()
    cpu, wall = time.process_time(), time.perf_counter()
    results = run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    connections, messages = sandbox.stats()
    failed = sum(1 for r in results if isinstance(r, Exception))
    row = {
        "way": name,
        "sends": count,
        "failed": failed,
        "arrived": messages - messages_before,
        "sends_per_s": round(count / wall, 1),
        "cpu_ms_per_send": round(cpu * 1000 / count, 3),
        "new_connections": connections - connections_before,
    }
    print(
        f"  {name:<34} {row['sends_per_s']:>9.1f}/s {row['cpu_ms_per_send']:>8.3f} ms CPU/send "
        f"{row['new_connections']:>5} new connections  ({failed} failed, {row['arrived']} arrived)"
    )
    return row


def _errors_kept(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # a failed send is a row's "failed", not the end of the benchmark
        return exc


def _send_one(adapter: Any, sms: Any) -> Any:
    return adapter.send(to=sms.to, sender=sms.sender, body=sms.body, status_callback=None)


def bench_sms(count: int, concurrency: int, latency: float) -> dict[str, Any]:
    from infra.adapters.sms import OutgoingSms, TwilioSms

    batch = [OutgoingSms(f"+35840{i:07d}", SENDER, f"Lasku {i} erääntyy 14.12.") for i in range(count)]
    with Sandbox("twilio", latency) as sandbox:
        print(f"sms: {count} to the twilio sandbox (another process, {latency * 1000:g} ms a message)")

        def loop(adapter: TwilioSms) -> Callable[[], list[Any]]:
            return lambda: [_errors_kept(partial(_send_one, adapter, sms)) for sms in batch]

        rows = []
        fresh = TwilioSms(SID, TOKEN, sandbox.address, 10.0, concurrency=1, keepalive_idle=0.0)
        try:
            rows.append(measure("send, one by one, new connections", sandbox, count, loop(fresh)))
        finally:
            fresh.close()
        adapter = TwilioSms(SID, TOKEN, sandbox.address, 10.0, concurrency=concurrency)
        try:
            adapter.send_many(batch[:concurrency])  # warm: threads started, connections open
            _send_one(adapter, batch[0])
            rows.append(measure("send, one by one, kept alive", sandbox, count, loop(adapter)))
            many = f"send_many ({concurrency} threads)"
            rows.append(measure(many, sandbox, count, lambda: adapter.send_many(batch)))
        finally:
            adapter.close()
    # Against what the stage does today: send, one by one, on a kept-alive session.
    return {"rows": rows, "ratio": round(rows[2]["sends_per_s"] / rows[1]["sends_per_s"], 2)}


def _each(adapter: Any, batch: list[Any]) -> Callable[[], list[Any]]:
    return lambda: [_errors_kept(partial(adapter.send, email)) for email in batch]


def bench_email(count: int, concurrency: int, latency: float) -> dict[str, Any]:
    from infra.adapters.email import OutgoingEmail, SmtpConfig, SmtpEmail

    batch = [
        OutgoingEmail(f"ntf_{i:032x}", f"aino{i}@example.fi", f"Lasku {i}", "Hei Aino, lasku.", "<p>Hei</p>")
        for i in range(count)
    ]
    with Sandbox("smtp", latency) as sandbox:
        print(f"email: {count} to the smtp sandbox (another process, {latency * 1000:g} ms a message)")
        host, _, port = sandbox.address.rpartition(":")
        config = SmtpConfig(host, int(port), FROM, timeout=10.0)
        rows = []
        for threads in (1, concurrency):
            adapter = SmtpEmail(config, concurrency=threads)
            try:
                adapter.send_many(batch[:threads])  # warm: threads started, connections open
                if threads == 1:
                    rows.append(
                        measure("send, one by one (a connection each)", sandbox, count, _each(adapter, batch))
                    )
                many = f"send_many ({threads} thread{'s' if threads > 1 else ''})"
                rows.append(measure(many, sandbox, count, partial(adapter.send_many, batch)))
            finally:
                adapter.close()
    # Against what the stage does today: send, one by one, a connection each.
    return {"rows": rows, "ratio": round(rows[-1]["sends_per_s"] / rows[0]["sends_per_s"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sms", type=int, default=500, help="SMS per way (0: skip)")
    parser.add_argument("--emails", type=int, default=200, help="emails per way (0: skip)")
    parser.add_argument("--sms-concurrency", type=int, default=16)
    parser.add_argument("--email-concurrency", type=int, default=4)
    parser.add_argument(
        "--latency-ms",
        type=float,
        action="append",
        help="the provider's time to answer a message, in ms; repeat for several runs (default: 0 and 50)",
    )
    args = parser.parse_args()
    summary: dict[str, Any] = {"benchmark": "send_many", "runs": []}
    for latency_ms in args.latency_ms or [0.0, 50.0]:
        run: dict[str, Any] = {"latency_ms": latency_ms}
        if args.sms > 0:
            run["sms"] = bench_sms(args.sms, args.sms_concurrency, latency_ms / 1000)
            print(f"  send_many / send: {run['sms']['ratio']}x sends/s")
        if args.emails > 0:
            run["email"] = bench_email(args.emails, args.email_concurrency, latency_ms / 1000)
            print(f"  send_many / send: {run['email']['ratio']}x sends/s")
        summary["runs"].append(run)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
