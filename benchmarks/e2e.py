"""End to end: N ``invoice.created`` events → N SMS at the Twilio sandbox, through every stage.

One run, on a real RabbitMQ and a temporary database (SQLite by default, or a throwaway
PostgreSQL cluster with ``--database postgresql``), with the stages as the Procfile runs them
(``herald worker route|render|sms|history``, one process tree each) and the Twilio sandbox in a
process of its own:

1. baseline: a bare no-op dramatiq actor drains N messages in one worker with
   the same threads (as ``benchmarks/route.py`` does), before the stages start;
2. throughput: N events published with ``Publisher.publish_many``; the clock
   stops when the sandbox has accepted N messages → notifications/s, and the
   ratio to the no-op drain; the CPU each stage, RabbitMQ, the PostgreSQL server
   and the sandbox spent per notification (from ``/proc``, per process). A few events per
   worker process go first, unmeasured (``--warmup``): first-message costs are not throughput;
3. idle: one event at a time, each after the pipeline has been idle (default 1 s),
   publish → the sandbox's accept (a quiet system must not be slow);
4. low-rate latency: events published one by one at 20/s (``--low-rate``); p50/p99;
5. latency: events published one by one at a fixed rate (default 200/s for
   10 s); for each, publish → the sandbox's accept, p50/p99 in ms;
6. the peak RSS (``VmHWM``) of every process of every stage, read just before
   they are stopped;
7. with ``--scaling 1,2,4``: the throughput phase again with that many processes per stage
   (fresh stages each; the count equal to ``--processes`` reuses phase 2).

The sandbox runs in its own process (a real provider is another machine, and it
must not share a GIL with the publisher), as a subclass that notes the moment it
accepts each message on the system-wide monotonic clock: the ``date_created`` the
sandbox answers with has whole seconds only, too coarse for a latency.

CPU per notification is the figure to compare: the machine may be shared, so rates are noisy,
while CPU seconds per notification barely move with load. RabbitMQ's share is the CPU of the
node listening on the AMQP port; a shared node also serves others, so ``--private-broker``
starts a node of the benchmark's own (on a free port, removed at the end) and its CPU is ours
alone. Its idle CPU before the run is reported too.

Targets: ≥ 1,000 notifications/s end to end on 2 cores (rate limit off), i.e. ≤ 2 ms of CPU per
notification across the stages and RabbitMQ; p99 under 100 ms at 200 events/s and p50 under 20 ms
at 20 events/s; one event on an idle pipeline at the sandbox within 100 ms; RSS under 100 MB per
worker process; more processes per stage, more notifications/s.

    python benchmarks/e2e.py [--events 2000] [--database sqlite|postgresql] [--private-broker]
                             [--rate 200] [--latency-seconds 10]
                             [--low-rate 20] [--low-rate-seconds 10]
                             [--idle-samples 5] [--idle-seconds 1]
                             [--threads N] [--processes 1] [--scaling 1,2,4] [--warmup 10]
                             [--json benchmarks/results-e2e.json]
                             [--profile DIR [--profile-mode gil|wall]
                                            [--profile-phase throughput|latency]]

``--profile`` needs py-spy in the venv (``.venv/bin/pip install py-spy``; not a dependency):
collapsed stacks of each stage's worker processes during the throughput phase, one file each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tooling.local.ports import free_port

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BIN = Path(sys.executable).parent
STAGES = ("route", "render", "sms", "history")
ORG = "bench"
SID = "AC" + "b" * 32
TOKEN = "bench-auth-token"  # the local sandbox's, not a real secret
SENDER = "+15005550006"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {
    "notifications_per_s": 1000,
    "cpu_ms_per_notification": 2.0,
    "p99_ms": 100,
    "low_rate_p50_ms": 20,
    "idle_single_ms": 100,
    "peak_rss_mb": 100,
}


# -- the sandbox, in its own process -------------------------------------------------------------


def _default_threads() -> int:
    """The threads a stage process of route, render, sms or history gets when
    ``HERALD_WORKER_THREADS`` is unset."""
    from infra.settings import Settings

    return Settings(worker_threads=None).threads_for("route")


def _sandbox_main(pipe: Connection, accepted: Any) -> None:
    """Serve a Twilio sandbox that notes when it accepts each message; obey ``pipe``."""
    from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox

    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    class TimedSandbox(TwilioSandbox):
        def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
            status, payload = super()._create(form)
            if status == 201:
                now = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
                with lock:
                    arrivals.setdefault(form["To"], now)
                    accepted.value = len(arrivals)
            return status, payload

    sandbox = TimedSandbox(SandboxConfig(SID, TOKEN, callback_delay_seconds=0.05))
    sandbox.start()
    pipe.send(sandbox.url)
    while True:
        if not pipe.poll(600):
            break  # the benchmark is gone
        command = pipe.recv()
        if command == "arrivals":
            with lock:
                pipe.send(dict(arrivals))
        else:
            break
    sandbox.stop()


class Sandbox:
    """The sandbox process: its URL, how many messages it accepted, and when."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.accepted = ctx.Value("q", 0, lock=False)
        self._pipe, child = ctx.Pipe()
        self.process = ctx.Process(target=_sandbox_main, args=(child, self.accepted), daemon=True)
        self.url = ""

    def start(self, timeout: float = 30) -> None:
        self.process.start()
        if not self._pipe.poll(timeout):
            raise RuntimeError("the twilio sandbox did not start")
        self.url = self._pipe.recv()

    def count(self) -> int:
        return int(self.accepted.value)

    def arrivals(self) -> dict[str, float]:
        self._pipe.send("arrivals")
        if not self._pipe.poll(30):
            raise RuntimeError("the twilio sandbox did not answer")
        return dict(self._pipe.recv())

    def stop(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):
                self._pipe.send("stop")
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)


# -- processes: tree, peak RSS, CPU --------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found += [int(c) for c in handle.read().split()]
    except OSError:
        pass
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant (dramatiq's forked worker processes)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    except OSError:
        return {}


def peak_rss_mb(pid: int) -> float:
    """``VmHWM``: the process's peak resident set, in MB."""
    raw = _status(pid).get("VmHWM", "0 kB").split()[0]
    return int(raw) / 1024


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (index 0 is field 3, the state)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of one process; with ``reaped_children`` also its waited-for children."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def _start_time(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[19]) if fields else 0


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP ``port`` (IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except (OSError, StopIteration):
            continue
    return inodes


def listener_pid(port: int, comm: str | None = None) -> int | None:
    """The process listening on TCP ``port`` on this machine (``comm`` narrows the search), if any."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not inodes:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        if comm is not None:
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() != comm:
                        continue
            except OSError:
                continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") in inodes:
                        return int(entry)
        except OSError:
            continue
    return None


@dataclass
class Stage:
    name: str
    processes: int
    process: subprocess.Popen[bytes]
    log: Path
    cpu_marks: list[float] = field(default_factory=list)

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def workers(self) -> list[int]:
        """The dramatiq worker processes: the supervisor's first children (``--fork`` ones come later)."""
        children = sorted(_children(self.process.pid), key=lambda pid: (_start_time(pid), pid))
        return children[: self.processes]

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _wait(done: Callable[[], bool], timeout: float, what: str, every: float = 0.01) -> float:
    """Poll ``done`` until true; seconds taken. Raises after ``timeout``."""
    started = time.monotonic()
    deadline = started + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - started


def _scaling(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected process counts like 1,2,4, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("process counts are 1 or more")
    return counts


# -- the benchmark -------------------------------------------------------------------------------


def _customers(first: int, count: int) -> list[dict[str, Any]]:
    """``count`` customers, one primary contact each with its own valid Finnish mobile."""
    return [
        {
            "org_id": ORG,
            "customer_id": f"B{i:06d}",
            "name": f"Bench customer {i}",
            "contacts": [
                {"contact_id": f"B{i:06d}-P", "primary": True, "mobile": _mobile(i), "locale": "fi"}
            ],
        }
        for i in range(first, first + count)
    ]


def _events(first: int, count: int, run: str) -> list[dict[str, Any]]:
    from tooling.demo.data import invoice_events

    batch = invoice_events(count, start=first, run=run)
    for event in batch:
        n = int(event["data"]["invoice"]["id"].removeprefix("INV-"))
        event["org_id"] = ORG
        event["data"]["invoice"]["customer_id"] = f"B{n:06d}"
    return batch


def _mobile(n: int) -> str:
    return f"+35840{n:07d}"


class Benchmark:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.stages: list[Stage] = []
        self.sandbox = Sandbox()
        self.url = ""
        self.env: dict[str, str] = {}
        self.depth_samples: dict[str, int] = {}
        self.postgres: Any = None  # tooling.local.postgres.LocalPostgres
        self.database_port: int | None = None
        self.broker_dir: Path | None = None
        self.next_customer = 1  # each phase takes customers (and so mobiles) of its own
        self.published = 0  # events published so far: history records one SMS each
        self._services: Any = None

    @property
    def settings(self) -> Any:
        """The settings the stages read from the environment ``configure`` set, for this process."""
        from infra.settings import Settings

        return Settings()

    @property
    def services(self) -> Any:
        """This process's services on the stages' store, booted once (``close`` shuts them down)."""
        if self._services is None:
            from infra.bootstrap import bootstrap

            self._services = bootstrap(self.settings)  # also migrates the new database
        return self._services

    # -- set-up ----------------------------------------------------------------------------------

    def configure(self) -> None:
        from infra.settings import DEFAULT_AMQP_URL
        from tooling.local import rabbitmq as rabbitmq_local

        if self.args.private_broker:
            self.url = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
            self.broker_dir = self.tmp / "rabbitmq"
            rabbitmq_local.ensure_broker(self.url, self.broker_dir, dist_port=free_port())
        else:
            self.url = os.environ.get("HERALD_AMQP_URL", DEFAULT_AMQP_URL)
            if "," not in self.url:  # a cluster's nodes (benchmarks/scale.py) are already up
                rabbitmq_local.ensure_broker(self.url, REPO / ".herald" / "rabbitmq")
        if self.args.database == "postgresql":
            from tooling.local.postgres import LocalPostgres

            self.postgres = LocalPostgres(database="herald_bench")
            database_url = self.postgres.start()
            self.database_port = urlsplit(database_url).port
        else:
            database_url = f"sqlite:///{self.tmp / 'bench.db'}"
        self.sandbox.start()
        overrides = {
            "HERALD_AMQP_URL": self.url,
            "HERALD_DATABASE_URL": database_url,
            "HERALD_QUEUE_PREFIX": self.prefix,
            "HERALD_TWILIO_ACCOUNT_SID": SID,
            "HERALD_TWILIO_AUTH_TOKEN": TOKEN,
            "HERALD_TWILIO_FROM": SENDER,
            "HERALD_TWILIO_BASE_URL": self.sandbox.url,
            # The per-sender rate limit off (once it exists): this measures the pipeline.
            "HERALD_SMS_SEGMENTS_PER_SECOND": "0",
            # No quiet hours: a run at night measures the pipeline, not the hold.
            "HERALD_DEFAULT_SEND_WINDOWS": "sms=any,email=any",
            "HERALD_LOG_LEVEL": self.args.log_level,
            "HERALD_WORKER_THREADS": str(self.args.threads),
            "HERALD_WORKER_PROCESSES": str(self.args.processes),
        }
        os.environ.update(overrides)
        # No status callbacks: no `herald api` runs here.
        os.environ.pop("HERALD_PUBLIC_URL", None)
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def customers_needed(self) -> int:
        args = self.args
        others = [n for n in args.scaling or [] if n != args.processes]
        return (
            args.events * (1 + len(others))
            + args.warmup * (args.processes + sum(others))
            + args.idle_samples
            + max(0, round(args.low_rate * args.low_rate_seconds))
            + max(0, round(args.rate * args.latency_seconds))
        )

    def import_directory(self, count: int) -> float:
        from infra.store.directory import refresh_statistics, upsert_customer
        from schemas.directory import CustomerRecord

        svc = self.services  # also migrates the new database, before any worker starts
        started = time.monotonic()
        with svc.transaction() as conn:
            for record in _customers(1, count):
                upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
        with svc.transaction() as conn:
            # As `herald contacts import` does: without statistics PostgreSQL plans route's contact
            # read as a nested loop (1.7 s a batch), and whether autovacuum got there first was luck.
            refresh_statistics(conn)
        return time.monotonic() - started

    def _take(self, count: int) -> int:
        first = self.next_customer
        self.next_customer += count
        return first

    def start_stages(self, processes: int) -> None:
        self.env["HERALD_WORKER_PROCESSES"] = str(processes)
        for name in STAGES:
            log = self.tmp / f"{name}-p{processes}.log"
            with log.open("wb") as handle:
                process = subprocess.Popen(
                    [
                        str(BIN / "herald"),
                        "worker",
                        name,
                        "--processes",
                        str(processes),
                        "--threads",
                        str(self.args.threads),
                    ],
                    env=self.env,
                    cwd=self.tmp,  # no .env of the repo, nothing written into it
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.stages.append(Stage(name, processes, process, log))
        for stage in self.stages:
            queue = f"{self.prefix}.{stage.name}"
            _wait(
                lambda q=queue, s=stage: self._consumers(q, s) >= processes,
                60 + 30 * processes,
                f"the {stage.name} worker to consume {queue}",
                every=0.2,
            )

    def _consumers(self, queue: str, stage: Stage) -> int:
        if stage.process.poll() is not None:
            raise RuntimeError(f"the {stage.name} worker exited:\n{stage.log.read_text()[-2000:]}")
        try:
            return self._queue_state(queue)[1]
        except Exception:  # not declared yet
            return 0

    def _connect(self) -> Any:
        """A blocking connection to the first node of ``self.url`` that answers."""
        from infra import amqp_nodes

        return amqp_nodes.connect(amqp_nodes.split_urls(self.url))

    def _queue_state(self, queue: str) -> tuple[int, int]:
        connection = self._connect()
        try:
            result = connection.channel().queue_declare(queue, passive=True)
            return result.method.message_count, result.method.consumer_count
        finally:
            connection.close()

    # -- phases ----------------------------------------------------------------------------------

    def baseline(self, count: int) -> float:
        """Messages/s of a no-op actor drained by one dramatiq worker with the same threads."""
        import dramatiq

        from infra.broker import build_broker
        from producers.confirming import ConfirmingChannel

        broker = build_broker(self.settings)

        logging.getLogger("dramatiq").setLevel(logging.ERROR)
        queue = f"{self.prefix}.noop"
        seen = {"n": 0}
        lock = threading.Lock()

        @dramatiq.actor(queue_name=queue, actor_name="bench_noop", broker=broker)
        def bench_noop(body: Any) -> None:
            with lock:
                seen["n"] += 1

        broker.declare_queue(queue, ensure=True)
        body = {"notification_id": "n" * 32}
        messages = [
            (
                str(i),
                dramatiq.Message(
                    queue_name=queue, actor_name="bench_noop", args=(body,), kwargs={}, options={}
                ).encode(),
            )
            for i in range(count)
        ]
        channel = ConfirmingChannel(self.url, [], 30.0)
        try:
            channel.publish(queue, messages, window=5000)
        finally:
            channel.close()
        worker = dramatiq.Worker(broker, queues={queue}, worker_threads=self.args.threads, worker_timeout=50)
        started = time.monotonic()
        worker.start()
        try:
            _wait(lambda: seen["n"] >= count, 60 + count / 50, "the no-op drain")
            elapsed = time.monotonic() - started
        finally:
            worker.stop()
            broker.close()
        return count / elapsed

    def idle_cpu(self, seconds: float = 2.0) -> dict[str, float]:
        """Percent of one core each stage (and the broker, the database server) burns with nothing to do,
        once the stages are warm: a stage's queue has a consumer before every process of it has
        finished starting (the ``/metrics`` fork imports for a second or two after it), and that
        start-up is not idling."""
        self._wait_warm()
        before = {s.name: s.cpu() for s in self.stages} | self._server_cpu()
        time.sleep(seconds)
        after = {s.name: s.cpu() for s in self.stages} | self._server_cpu()
        both = [name for name in after if name in before]
        return {name: round((after[name] - before[name]) / seconds * 100, 1) for name in both}

    def _wait_warm(self, window: float = 0.5, quiet_percent: float = 5.0, timeout: float = 30.0) -> None:
        """Until no stage burns more than ``quiet_percent`` of a core over ``window`` seconds (at most
        ``timeout``): the processes have done starting."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = {s.name: s.cpu() for s in self.stages}
            time.sleep(window)
            busy = max((s.cpu() - before[s.name]) / window * 100 for s in self.stages)
            if busy <= quiet_percent:
                return

    def log_problems(self) -> dict[str, dict[str, int]]:
        """Warnings and errors in each stage's log, counted by message."""
        found: dict[str, dict[str, int]] = {}
        for stage in self.stages:
            counts: dict[str, int] = {}
            for line in stage.log.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
                    key = f"{entry['level']}: {str(entry.get('msg', ''))[:80]}"
                    counts[key] = counts.get(key, 0) + 1
            if counts:
                found[stage.name] = counts
        return found

    def warm_up(self) -> int:
        """A few events per worker process, settled before a clock starts: first-message costs out."""
        from producers.publisher import Publisher

        count = self.args.warmup * self.stages[0].processes
        if count:
            first = self._take(count)
            with Publisher(self.settings) as publisher:
                publisher.connect()
                publisher.publish_many(_events(first, count, f"warm{uuid.uuid4().hex[:6]}"))
            self.published += count
            self.settle()
        return count

    def throughput(self, count: int) -> dict[str, Any]:
        from producers.publisher import Publisher

        warmed = self.warm_up()
        first = self._take(count)
        events = _events(first, count, f"tp{uuid.uuid4().hex[:6]}")
        stop_sampling = threading.Event()
        sampler = threading.Thread(target=self._sample_depths, args=(stop_sampling,), daemon=True)
        profilers = self._start_profilers("throughput")
        cpu_before = {s.name: s.cpu() for s in self.stages}
        others_before = self._other_cpu()
        before = self.sandbox.count()
        with Publisher(self.settings) as publisher:
            publisher.connect()
            sampler.start()
            started = time.monotonic()
            publisher.publish_many(events)
            published = time.monotonic() - started
        self.published += count
        try:
            _wait(
                lambda: self.sandbox.count() >= before + count,
                60 + count / 20,
                f"{count} SMS at the sandbox",
            )
            at_sandbox = time.monotonic() - started
            self._wait_recorded(self.published, 60 + count / 50)
            settled = time.monotonic() - started
        finally:
            stop_sampling.set()
            sampler.join(timeout=5)
            self._stop_profilers(profilers)
        cpu = {s.name: s.cpu() - cpu_before[s.name] for s in self.stages}
        others = {k: v - others_before.get(k, 0.0) for k, v in self._other_cpu().items()}
        per = {k: round(v * 1000 / count, 2) for k, v in {**cpu, **others}.items()}
        stages_ms = sum(cpu.values()) * 1000 / count
        per["stages"] = round(stages_ms, 2)
        per["stages+rabbitmq"] = round(stages_ms + others.get("rabbitmq", 0.0) * 1000 / count, 2)
        # Everything herald needs on these cores: the stages, RabbitMQ and the database server.
        per["pipeline"] = round(
            stages_ms + (others.get("rabbitmq", 0.0) + others.get("postgresql", 0.0)) * 1000 / count, 2
        )
        return {
            "events": count,
            "warmup_events": warmed,
            "processes": self.stages[0].processes,
            "publish_seconds": round(published, 3),
            "sandbox_seconds": round(at_sandbox, 3),
            "notifications_per_s": round(count / at_sandbox),
            "history_settled_seconds": round(settled, 3),
            "cpu_ms_per_notification": per,
            "cpu_seconds_total": round(sum(cpu.values()) + sum(others.values()), 2),
            "max_queue_depth": dict(self.depth_samples),
        }

    def _start_profilers(self, phase: str, rate: float = 0) -> list[subprocess.Popen[bytes]]:
        """With ``--profile DIR``: py-spy on each stage's worker processes (raw collapsed stacks),
        when ``phase`` is the one ``--profile-phase`` names."""
        if not self.args.profile or self.args.profile_phase != phase or (rate and rate != self.args.rate):
            return []
        self.args.profile.mkdir(parents=True, exist_ok=True)
        started = []
        for stage in self.stages:
            for pid in stage.workers():  # not the supervisor (it only waits) nor the metrics fork
                out = self.args.profile / f"{phase}-{stage.name}-{pid}.txt"
                argv = [str(BIN / "py-spy"), "record", "--format", "raw", "--rate", "200"]
                # gil: only the thread holding the GIL (where the CPU goes); wall: waiting stacks too.
                argv.append("--gil" if self.args.profile_mode == "gil" else "--idle")
                if phase == "latency":
                    argv.append("--nonblocking")  # pausing a process to sample it would stretch latencies
                started.append(
                    subprocess.Popen(
                        [*argv, "--pid", str(pid), "-o", str(out)],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        time.sleep(1.0)  # let py-spy attach
        return started

    @staticmethod
    def _stop_profilers(profilers: list[subprocess.Popen[bytes]]) -> None:
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)
        for profiler in profilers:
            try:
                profiler.wait(timeout=30)
            except subprocess.TimeoutExpired:
                profiler.kill()
                profiler.wait(timeout=5)

    def _server_cpu(self) -> dict[str, float]:
        """CPU seconds so far of the RabbitMQ node on our AMQP port and of our PostgreSQL server."""
        figures = {}
        # Every node of a cluster: the replicas of quorum queues cost CPU on each.
        brokers = [listener_pid(urlsplit(url).port or 5672, comm="beam.smp") for url in self.url.split(",")]
        if any(pid is not None for pid in brokers):
            figures["rabbitmq"] = sum(cpu_seconds(pid) for pid in brokers if pid is not None)
        if self.database_port is not None:
            postmaster = listener_pid(self.database_port, comm="postgres")
            if postmaster is not None:
                # The backends of closed connections were reaped by the postmaster: counted there.
                figures["postgresql"] = cpu_seconds(postmaster, reaped_children=True) + sum(
                    cpu_seconds(pid) for pid in process_tree(postmaster)[1:]
                )
        return figures

    def _other_cpu(self) -> dict[str, float]:
        figures = {
            "sandbox": cpu_seconds(self.sandbox.process.pid or 0),
            "bench (publisher)": cpu_seconds(os.getpid()),
        }
        return figures | self._server_cpu()

    def _sample_depths(self, stop: threading.Event, timeline: list[dict[str, Any]] | None = None) -> None:
        """Each stage's ready messages every 0.25 s, the maximum in ``depth_samples``; with
        ``timeline``, every sample too (seconds since the start, depth by stage)."""
        self.depth_samples = {name: 0 for name in STAGES}
        connection = self._connect()
        started = time.monotonic()
        try:
            channel = connection.channel()
            while not stop.wait(0.25):
                sample: dict[str, Any] = {"t": round(time.monotonic() - started, 2)}
                for name in STAGES:
                    depth = channel.queue_declare(f"{self.prefix}.{name}", passive=True).method.message_count
                    self.depth_samples[name] = max(self.depth_samples[name], depth)
                    sample[name] = depth
                if timeline is not None:
                    timeline.append(sample)
        finally:
            connection.close()

    def _wait_recorded(self, total: int, timeout: float) -> None:
        """Until history has recorded ``total`` SMS as sent (every event published so far)."""
        from sqlalchemy import func, select

        from infra.store.tables import notifications

        query = select(func.count()).where(notifications.c.channel == "sms", notifications.c.status == "sent")

        def recorded() -> bool:
            with self.services.engine.connect() as conn:
                return int(conn.execute(query).scalar_one()) >= total

        _wait(recorded, timeout, f"history to record {total} SMS as sent", every=0.1)

    def settle(self, timeout: float = 120) -> None:
        """Until every event published so far is at the sandbox and recorded by history."""
        _wait(lambda: self.sandbox.count() >= self.published, timeout, "the sandbox to catch up")
        self._wait_recorded(self.published, timeout)

    def idle_single(self, samples: int, idle_seconds: float) -> dict[str, Any]:
        """One event at a time on an idle pipeline: publish → the sandbox's accept, in ms."""
        from producers.publisher import Publisher

        first = self._take(samples)
        events = _events(first, samples, f"idle{uuid.uuid4().hex[:6]}")
        latencies = []
        with Publisher(self.settings) as publisher:
            publisher.connect()  # connecting is not part of the figure
            for i, event in enumerate(events):
                self.settle()
                time.sleep(idle_seconds)  # nothing in flight anywhere for this long
                before = self.sandbox.count()
                published_at = time.monotonic()
                publisher.publish(event)
                self.published += 1
                _wait(lambda b=before: self.sandbox.count() > b, 30, "one SMS", every=0.001)
                latencies.append((self.sandbox.arrivals()[_mobile(first + i)] - published_at) * 1000)
        self.settle()
        return {
            "samples": samples,
            "idle_seconds": idle_seconds,
            "ms": [round(ms, 1) for ms in latencies],
            "median_ms": round(statistics.median(latencies), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
        }

    def latency(self, rate: float, seconds: float) -> dict[str, Any]:
        from producers.publisher import Publisher

        count = max(1, round(rate * seconds))
        first = self._take(count)
        events = _events(first, count, f"lat{uuid.uuid4().hex[:6]}")
        before = self.sandbox.count()
        published_at: dict[str, float] = {}
        late = 0
        timeline: list[dict[str, Any]] = []
        stop_sampling = threading.Event()
        sampler = threading.Thread(target=self._sample_depths, args=(stop_sampling, timeline), daemon=True)
        profilers = self._start_profilers("latency", rate)
        cpu_before = {s.name: s.cpu() for s in self.stages} | self._server_cpu()
        with Publisher(self.settings) as publisher:
            publisher.connect()
            sampler.start()
            started = time.monotonic()
            for i, event in enumerate(events):
                due = started + i / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                elif pause < -0.005:
                    late += 1
                published_at[_mobile(first + i)] = time.monotonic()
                publisher.publish(event)
            publishing = time.monotonic() - started
        self.published += count
        try:
            _wait(lambda: self.sandbox.count() >= before + count, 60 + count / 20, f"{count} more SMS")
        finally:
            stop_sampling.set()
            sampler.join(timeout=5)
            self._stop_profilers(profilers)
        cpu = {
            k: v - cpu_before.get(k, 0.0)
            for k, v in ({s.name: s.cpu() for s in self.stages} | self._server_cpu()).items()
        }
        arrivals = self.sandbox.arrivals()
        latencies = sorted((arrivals[to] - t) * 1000 for to, t in published_at.items() if to in arrivals)
        return {
            "events": count,
            "rate": rate,
            "achieved_rate": round(count / publishing, 1),
            "late_publishes": late,
            "p50_ms": round(_percentile(latencies, 50), 1),
            "p90_ms": round(_percentile(latencies, 90), 1),
            "p99_ms": round(_percentile(latencies, 99), 1),
            "max_ms": round(latencies[-1], 1) if latencies else None,
            # Where the time went: CPU per notification by stage over the phase (to the sandbox's
            # last accept), and each stage's ready messages sampled every 0.25 s.
            "cpu_ms_per_notification": {k: round(v * 1000 / count, 2) for k, v in cpu.items()},
            "max_queue_depth": dict(self.depth_samples),
            "queue_depths": timeline,
        }

    def peak_rss(self) -> dict[str, list[dict[str, Any]]]:
        figures: dict[str, list[dict[str, Any]]] = {}
        for stage in self.stages:
            root, workers = stage.process.pid, stage.workers()
            figures[stage.name] = [
                {
                    "pid": pid,
                    "role": "supervisor" if pid == root else "worker" if pid in workers else "fork",
                    "peak_rss_mb": peak_rss_mb(pid),
                }
                for pid in stage.pids()
            ]
        sandbox_pid = self.sandbox.process.pid or 0
        figures["sandbox"] = [
            {"pid": sandbox_pid, "role": "sandbox", "peak_rss_mb": peak_rss_mb(sandbox_pid)}
        ]
        return figures

    def scaling_run(self, processes: int, count: int) -> dict[str, Any]:
        """Fresh stages with ``processes`` each, then the throughput phase."""
        self.stop_stages()
        self.start_stages(processes)
        idle = self.idle_cpu()
        figures = self.throughput(count)
        rss = self.peak_rss()
        figures["worker_peak_rss_mb"] = _worker_rss(rss)
        figures["idle_cpu_percent"] = idle
        figures["log_problems"] = self.log_problems()
        return figures

    # -- tear-down -------------------------------------------------------------------------------

    def stop_stages(self) -> None:
        for stage in self.stages:
            if stage.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(stage.process.pid, signal.SIGTERM)
        for stage in self.stages:
            try:
                stage.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(stage.process.pid, signal.SIGKILL)
                stage.process.wait(timeout=10)
        self.stages = []

    def stop(self) -> None:
        try:
            self.stop_stages()
            self.sandbox.stop()
            if self.url:
                self._delete_queues()
            from infra.bootstrap import shutdown

            if self._services is not None:
                shutdown(self._services)
        finally:
            if self.postgres is not None:
                self.postgres.stop()
            if self.broker_dir is not None:
                from tooling.local import rabbitmq as rabbitmq_local

                rabbitmq_local.stop_broker(self.broker_dir)

    def _delete_queues(self) -> None:

        try:
            connection = self._connect()
        except Exception:  # the broker is gone: nothing to delete
            return
        try:
            channel = connection.channel()
            for name in (*STAGES, "noop"):
                queue = f"{self.prefix}.{name}"
                for each in (queue, f"{queue}.DQ", f"{queue}.XQ"):
                    channel.queue_delete(each)
        finally:
            connection.close()


def _worker_rss(rss: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """The largest peak RSS of a worker process, per stage."""
    return {
        stage: round(max(r["peak_rss_mb"] for r in rows if r["role"] == "worker"), 1)
        for stage, rows in rss.items()
        if any(r["role"] == "worker" for r in rows)
    }


def _cpu_lines(per: dict[str, float], depths: dict[str, int] | None = None) -> list[str]:
    lines = []
    for name, ms in per.items():
        depth = (depths or {}).get(name)
        target = ""
        if name in ("stages+rabbitmq", "pipeline"):
            target = f"≤ {TARGETS['cpu_ms_per_notification']:g} ms"
        lines.append(f"  {name:<42}{ms:>8.2f}{target:>12}    {'' if depth is None else depth}")
    return lines


def _table(figures: dict[str, Any]) -> str:
    tp, lat = figures["throughput"], figures["latency"]
    low, idle = figures["low_rate"], figures["idle_single"]
    lines = [
        f"herald end to end: {tp['events']} invoice.created events → SMS at the Twilio sandbox "
        f"(route, render, sms, history: {figures['processes']} process(es) x {figures['threads']} "
        f"threads each; rate limit off; {figures['database']}; {figures['broker']} RabbitMQ; "
        f"{os.cpu_count()} cores)",
        "",
        f"{'figure':<44}{'measured':>14}{'target':>12}",
        f"{'end to end (to the sandbox)':<44}{tp['notifications_per_s']:>10} /s{'≥ 1000 /s':>12}",
        f"{'  … until history recorded every one':<44}"
        f"{round(tp['events'] / tp['history_settled_seconds']):>10} /s",
        f"{'bare dramatiq no-op drain (1 worker)':<44}{figures['noop_messages_per_s']:>10} /s",
        f"{'ratio end to end / no-op':<44}{figures['ratio']:>12.3f}",
        f"{'publish_many of the batch':<44}{tp['publish_seconds']:>11.2f} s",
        f"{'one event on an idle pipeline: median':<44}{idle['median_ms']:>11.1f} ms{'< 100 ms':>12}",
        f"{'  … max of ' + str(idle['samples']):<44}{idle['max_ms']:>11.1f} ms",
        f"{'latency p50 at ' + str(low['rate']) + ' events/s':<44}{low['p50_ms']:>11.1f} ms{'< 20 ms':>12}",
        f"{'latency p99 at ' + str(low['rate']) + ' events/s':<44}{low['p99_ms']:>11.1f} ms",
        f"{'latency p50 at ' + str(lat['rate']) + ' events/s':<44}{lat['p50_ms']:>11.1f} ms",
        f"{'latency p90':<44}{lat['p90_ms']:>11.1f} ms",
        f"{'latency p99':<44}{lat['p99_ms']:>11.1f} ms{'< 100 ms':>12}",
        f"{'latency max':<44}{lat['max_ms']:>11.1f} ms",
        f"{'  (paced publishing reached)':<44}{lat['achieved_rate']:>10} /s",
        "",
        f"{'process':<12}{'pid':>8}  {'role':<11}{'peak RSS':>12}{'target':>12}",
    ]
    for stage, rows in figures["rss"].items():
        for row in rows:
            target = "< 100 MB" if row["role"] == "worker" else ""
            lines.append(
                f"{stage:<12}{row['pid']:>8}  {row['role']:<11}{row['peak_rss_mb']:>9.1f} MB{target:>12}"
            )
    heading = f"{'CPU per notification (throughput phase)':<44}{'ms':>8}{'target':>12}    max queue depth"
    lines += ["", heading]
    lines += _cpu_lines(tp["cpu_ms_per_notification"], tp["max_queue_depth"])
    lines.append(
        f"  {'total CPU seconds':<42}{tp['cpu_seconds_total']:>8.2f}"
        f"    (wall {tp['sandbox_seconds']:.2f} s x {os.cpu_count()} cores = "
        f"{tp['sandbox_seconds'] * (os.cpu_count() or 1):.2f} core-s)"
    )
    lines.append(
        "  idle CPU before the run (% of a core): "
        + ", ".join(f"{k} {v}" for k, v in figures["idle_cpu_percent"].items())
    )
    if "cpu_ms_per_notification" in lat:
        title = f"CPU per notification at {lat['rate']:g} events/s"
        heading = f"{title:<44}{'ms':>8}{'':>12}    max queue depth"
        lines += [heading, *_cpu_lines(lat["cpu_ms_per_notification"], lat["max_queue_depth"])]
    for stage, counts in figures["log_problems"].items():
        for message, n in sorted(counts.items(), key=lambda item: -item[1])[:5]:
            lines.append(f"  {stage} log: {n} x {message}")
    if figures["scaling"]:
        lines += [
            "",
            f"scaling ({figures['database']}, {figures['threads']} threads per process, "
            f"{tp['events']} events each)",
            f"{'processes/stage':>16}{'notif./s':>10}{'ratio':>8}{'stages':>9}{'rabbitmq':>10}"
            f"{'database':>10}{'pipeline':>10}{'worker RSS':>12}   (CPU ms per notification)",
        ]
        for row in figures["scaling"]:
            per = row["cpu_ms_per_notification"]
            lines.append(
                f"{row['processes']:>16}{row['notifications_per_s']:>10}"
                f"{row['notifications_per_s'] / figures['noop_messages_per_s']:>8.3f}"
                f"{per['stages']:>9.2f}{per.get('rabbitmq', float('nan')):>10.2f}"
                f"{per.get('postgresql', 0.0):>10.2f}{per['pipeline']:>10.2f}"
                f"{max(row['worker_peak_rss_mb'].values()):>9.1f} MB"
            )
    return "\n".join(lines)


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The one JSON line ``run_all.py`` collects."""
    tp = figures["throughput"]
    summary = {
        k: figures[k] for k in ("benchmark", "database", "broker", "events", "threads", "processes", "cores")
    }
    summary |= {k: figures[k] for k in ("notifications_per_s", "noop_messages_per_s", "ratio")}
    summary |= {
        "p50_ms": figures["p50_ms"],
        "p99_ms": figures["p99_ms"],
        "rate": figures["latency"]["rate"],
        "low_rate": figures["low_rate"]["rate"],
        "low_rate_p50_ms": figures["low_rate"]["p50_ms"],
        "low_rate_p99_ms": figures["low_rate"]["p99_ms"],
        "idle_single_median_ms": figures["idle_single"]["median_ms"],
        "idle_single_max_ms": figures["idle_single"]["max_ms"],
        "cpu_ms_per_notification": tp["cpu_ms_per_notification"],
        "peak_rss_mb": figures["peak_rss_mb"],
        "worker_peak_rss_mb": figures["worker_peak_rss_mb"],
        "rabbitmq_idle_percent": figures["idle_cpu_percent"].get("rabbitmq"),
        "scaling": [
            {
                "processes": row["processes"],
                "notifications_per_s": row["notifications_per_s"],
                "cpu_ms_per_notification": row["cpu_ms_per_notification"],
                "worker_peak_rss_mb": row["worker_peak_rss_mb"],
            }
            for row in figures["scaling"]
        ],
        "targets": figures["targets"],
    }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000, help="events of the throughput phase")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="a temporary SQLite file, or a throwaway PostgreSQL cluster (tooling.local.postgres)",
    )
    parser.add_argument(
        "--private-broker",
        action="store_true",
        help="a RabbitMQ node of the benchmark's own on a free port: its CPU is this run's alone",
    )
    parser.add_argument("--rate", type=float, default=200, help="events/s of the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--low-rate", type=float, default=20, help="events/s of the low-rate latency phase")
    parser.add_argument("--low-rate-seconds", type=float, default=10)
    parser.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="events per worker process before each throughput phase, not measured",
    )
    parser.add_argument("--idle-samples", type=int, default=5, help="single events on an idle pipeline")
    parser.add_argument("--idle-seconds", type=float, default=1.0, help="idle time before each of them")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="worker threads per stage process (default: herald's own for these stages, 1)",
    )
    parser.add_argument("--processes", type=int, default=1, help="worker processes per stage")
    parser.add_argument(
        "--scaling",
        type=_scaling,
        help="process counts per stage (e.g. 1,2,4): the throughput phase again with each",
    )
    parser.add_argument(
        "--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="of the workers"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the stage workers during the throughput phase into this directory",
    )
    parser.add_argument(
        "--profile-mode",
        choices=("gil", "wall"),
        default="gil",
        help="with --profile: CPU (gil) or wall time",
    )
    parser.add_argument(
        "--profile-phase",
        choices=("throughput", "latency"),
        default="throughput",
        help="with --profile: the throughput phase, or the latency phase at --rate",
    )
    args = parser.parse_args()

    if args.profile and not (BIN / "py-spy").exists():
        parser.error("--profile needs py-spy: .venv/bin/pip install py-spy")
    if args.idle_samples < 1:
        parser.error("--idle-samples: 1 or more")
    if args.threads is None:
        args.threads = _default_threads()
    scaling: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-e2e-") as tmpdir:
        bench = Benchmark(args, Path(tmpdir))
        try:
            bench.configure()
            customers = bench.customers_needed()
            imported = bench.import_directory(customers)
            print(f"directory: {customers} customers imported in {imported:.1f} s", flush=True)
            noop = bench.baseline(args.events)
            print(f"baseline: no-op drain {noop:.0f} messages/s", flush=True)
            bench.start_stages(args.processes)
            idle = bench.idle_cpu()
            throughput = bench.throughput(args.events)
            print(
                f"throughput: {throughput['notifications_per_s']} notifications/s, "
                f"{throughput['cpu_ms_per_notification']['pipeline']} ms CPU each",
                flush=True,
            )
            idle_single = bench.idle_single(args.idle_samples, args.idle_seconds)
            print(f"idle: one event at the sandbox in {idle_single['median_ms']} ms (median)", flush=True)
            low_rate = bench.latency(args.low_rate, args.low_rate_seconds)
            print(f"latency at {args.low_rate:g}/s: p50 {low_rate['p50_ms']} ms", flush=True)
            bench.settle()
            latency = bench.latency(args.rate, args.latency_seconds)
            print(f"latency at {args.rate:g}/s: p99 {latency['p99_ms']} ms", flush=True)
            bench.settle(timeout=120 + args.rate * args.latency_seconds / 10)
            rss = bench.peak_rss()
            problems = bench.log_problems()
            for processes in args.scaling or []:
                if processes == args.processes:
                    row = dict(throughput, worker_peak_rss_mb=_worker_rss(rss), idle_cpu_percent=idle)
                else:
                    row = bench.scaling_run(processes, args.events)
                scaling.append(row)
                print(
                    f"scaling: {processes} process(es) per stage: "
                    f"{row['notifications_per_s']} notifications/s, "
                    f"{row['cpu_ms_per_notification']['pipeline']} ms CPU each",
                    flush=True,
                )
        finally:
            bench.stop()

    figures = {
        "benchmark": "e2e",
        "database": args.database,
        "broker": "private" if args.private_broker else "shared",
        "events": args.events,
        "threads": args.threads,
        "processes": args.processes,
        "cores": os.cpu_count(),
        "notifications_per_s": throughput["notifications_per_s"],
        "noop_messages_per_s": round(noop),
        "ratio": round(throughput["notifications_per_s"] / noop, 3),
        "p50_ms": latency["p50_ms"],
        "p99_ms": latency["p99_ms"],
        "peak_rss_mb": {
            stage: round(max(r["peak_rss_mb"] for r in rows), 1) for stage, rows in rss.items() if rows
        },
        "worker_peak_rss_mb": _worker_rss(rss),
        "targets": TARGETS,
        "throughput": throughput,
        "idle_single": idle_single,
        "low_rate": low_rate,
        "latency": latency,
        "scaling": scaling,
        "rss": rss,
        "idle_cpu_percent": idle,
        "log_problems": problems,
    }
    print()
    print(_table(figures))
    print()
    print(json.dumps(_summary(figures), separators=(",", ":")))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
