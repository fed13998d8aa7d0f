"""Scale: the end-to-end run (``benchmarks/e2e.py``'s) on PostgreSQL with 1, 2 and 4 processes per
stage, on one RabbitMQ node and on a 3-node cluster, then once more on the cluster with one node
killed mid-run.

Each row is a fresh ``e2e.Benchmark`` (its own PostgreSQL, queues and Twilio sandbox; the stages
as the Procfile runs them): a warm-up, the throughput phase (``--events`` published at once →
notifications/s and CPU per notification of the stages, every RabbitMQ node and PostgreSQL), then
the latency phase (``--rate`` events/s for ``--latency-seconds`` → p99). The single node runs
classic queues, the cluster quorum queues (each the setting for it; a quorum queue replicates
every message to the other nodes, which costs CPU there).

The kill row: on the cluster, 2 processes per stage listing node 1 first, ``--kill-events``
published; once a quarter is at the sandbox, node 1 is SIGKILLed. Every process moves on to node
2. Reported: the longest pause in deliveries after the kill (the time to recover), and how many
notifications were lost (never at the sandbox) or doubled (at the sandbox twice): both must be 0.

On 2 cores, more processes do not give more notifications/s once the cores are busy: read CPU
per notification, which says how much throughput each added core buys.

    python benchmarks/scale.py [--events 1000] [--processes 1,2,4] [--rate 100]
                               [--latency-seconds 5] [--kill-events 2000] [--skip-kill]
                               [--json benchmarks/results-scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # e2e, beside this file

import e2e

from tooling.local.ports import free_ports
from tooling.local.rabbitmq import ensure_broker, stop_broker
from tooling.local.rabbitmq_cluster import LocalCluster


def _args(args: argparse.Namespace, processes: int, events: int) -> argparse.Namespace:
    """The ``e2e.py`` options of one row: PostgreSQL, no idle or low-rate phases."""
    return argparse.Namespace(
        events=events,
        database="postgresql",
        private_broker=False,
        rate=args.rate,
        latency_seconds=args.latency_seconds,
        low_rate=0,
        low_rate_seconds=0,
        idle_samples=0,
        idle_seconds=0,
        threads=args.threads,
        processes=processes,
        scaling=None,
        warmup=args.warmup,
        log_level="WARNING",
        profile=None,
        profile_mode="gil",
    )


def _with_broker(url: str, queue_type: str) -> dict[str, str | None]:
    """Point the environment (which ``e2e.Benchmark`` reads) at a broker; what it was, to restore."""
    saved = {name: os.environ.get(name) for name in ("HERALD_AMQP_URL", "HERALD_QUEUE_TYPE")}
    os.environ["HERALD_AMQP_URL"] = url
    os.environ["HERALD_QUEUE_TYPE"] = queue_type
    return saved


def _restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def analyze(bench: e2e.Benchmark) -> None:
    """``ANALYZE`` the freshly imported directory. Without statistics (autovacuum analyzes a new
    table only after a while) PostgreSQL plans route's contact lookup as a nested loop over every
    contact of the organisation: 5 s a query at 1,500 contacts instead of 0.1 ms, and the row would
    measure that instead of herald."""
    with bench.services.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def run_row(
    args: argparse.Namespace, broker: str, url: str, queue_type: str, processes: int
) -> dict[str, Any]:
    """One row: throughput and p99 with ``processes`` per stage on ``url``."""
    saved = _with_broker(url, queue_type)
    row_args = _args(args, processes, args.events)
    with tempfile.TemporaryDirectory(prefix="herald-bench-scale-") as tmpdir:
        bench = e2e.Benchmark(row_args, Path(tmpdir))
        try:
            bench.configure()
            bench.import_directory(bench.customers_needed())
            analyze(bench)
            bench.start_stages(processes)
            throughput = bench.throughput(args.events)
            latency = bench.latency(args.rate, args.latency_seconds)
            bench.settle()
        finally:
            bench.stop()
            _restore(saved)
    cpu = throughput["cpu_ms_per_notification"]
    return {
        "broker": broker,
        "queue_type": queue_type,
        "processes": processes,
        "notifications_per_s": throughput["notifications_per_s"],
        "cpu_ms_per_notification": cpu["pipeline"],
        "cpu_ms_stages": cpu["stages"],
        "cpu_ms_rabbitmq": cpu.get("rabbitmq"),
        "cpu_ms_postgresql": cpu.get("postgresql"),
        "p99_ms": latency["p99_ms"],
        "p50_ms": latency["p50_ms"],
    }


def kill_row(args: argparse.Namespace, cluster: LocalCluster) -> dict[str, Any]:
    """Node 1 SIGKILLed mid-run on the cluster; the time to recover and what was lost or doubled."""
    from twilio.rest import Client

    processes = 2
    count = args.kill_events
    saved = _with_broker(cluster.amqp_url, "quorum")
    row_args = _args(args, processes, count)
    row_args.warmup = 0
    with tempfile.TemporaryDirectory(prefix="herald-bench-kill-") as tmpdir:
        bench = e2e.Benchmark(row_args, Path(tmpdir))
        try:
            bench.configure()
            bench.import_directory(count)
            analyze(bench)
            bench.start_stages(processes)
            killed_at: list[float] = []

            def kill_mid_run() -> None:
                e2e._wait(lambda: bench.sandbox.count() >= count // 4, 120, "a quarter at the sandbox")
                killed_at.append(time.monotonic())
                cluster.kill(1)

            killer = threading.Thread(target=kill_mid_run, daemon=True)
            killer.start()
            from producers.publisher import Publisher

            events = e2e._events(bench._take(count), count, f"kill{uuid.uuid4().hex[:6]}")
            started = time.monotonic()
            with Publisher(bench.settings) as publisher:
                publisher.publish_many(events)
            bench.published += count
            killer.join(timeout=180)
            e2e._wait(lambda: bench.sandbox.count() >= count, 300, f"{count} SMS at the sandbox")
            finished = time.monotonic()
            bench._wait_recorded(count, 300)
            after = sorted(t for t in bench.sandbox.arrivals().values() if t >= killed_at[0])
            gaps = [b - a for a, b in zip([killed_at[0], *after], after, strict=False)]
            client = Client(e2e.SID, e2e.TOKEN)
            client.api.base_url = bench.sandbox.url
            sent = [(m.to, m.body) for m in client.messages.list(page_size=1000, limit=count * 2)]
            unique = len(set(sent))
        finally:
            cluster.start(1)  # first: deleting a quorum queue waits for its members
            bench.stop()
            _restore(saved)
    return {
        "broker": "3-node cluster, node 1 killed",
        "queue_type": "quorum",
        "processes": processes,
        "events": count,
        "notifications_per_s": round(count / (finished - started)),
        "recovery_seconds": round(max(gaps), 2) if gaps else None,
        "lost": count - unique,
        "doubled": len(sent) - unique,
    }


def table(rows: list[dict[str, Any]], kill: dict[str, Any] | None) -> str:
    """The Markdown table of the docs."""
    lines = [
        "| broker | queues | processes per stage | notifications/s | CPU ms per notification "
        "(stages + RabbitMQ + PostgreSQL) | of which RabbitMQ | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['broker']} | {row['queue_type']} | {row['processes']} | {row['notifications_per_s']} "
            f"| {row['cpu_ms_per_notification']} | {row['cpu_ms_rabbitmq']} | {row['p99_ms']} |"
        )
    if kill is not None:
        lines += [
            "",
            "| run | events | notifications/s | longest pause after the kill (s) | lost | doubled |",
            "|---|---:|---:|---:|---:|---:|",
            f"| {kill['broker']}, {kill['processes']} processes per stage | {kill['events']} "
            f"| {kill['notifications_per_s']} | {kill['recovery_seconds']} "
            f"| {kill['lost']} | {kill['doubled']} |",
        ]
    return "\n".join(lines)


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected process counts like 1,2,4, not {text!r}") from None
    if not counts or any(n < 1 or n > 16 for n in counts):
        raise argparse.ArgumentTypeError("process counts are between 1 and 16")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000, help="events of each throughput phase")
    parser.add_argument(
        "--processes", type=_counts, default=[1, 2, 4], help="processes per stage, e.g. 1,2,4"
    )
    parser.add_argument("--rate", type=float, default=100, help="events/s of each latency phase")
    parser.add_argument("--latency-seconds", type=float, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="worker threads per stage process (herald's default for them)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="events per worker process before the clock")
    parser.add_argument("--kill-events", type=int, default=2000, help="events of the run with a node killed")
    parser.add_argument("--skip-kill", action="store_true", help="no run with a node killed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.events < 10 or args.kill_events < 100:
        parser.error("--events: 10 or more; --kill-events: 100 or more")

    rows: list[dict[str, Any]] = []
    kill = None
    with tempfile.TemporaryDirectory(prefix="herald-bench-brokers-") as tmpdir:
        single_dir = Path(tmpdir) / "single"
        single_port, single_dist, *ports = free_ports(8)
        single = f"amqp://guest:guest@127.0.0.1:{single_port}/%2F"
        cluster = LocalCluster(Path(tmpdir) / "cluster", 3, ports=ports[:3], dist_ports=ports[3:])
        try:
            ensure_broker(single, single_dir, dist_port=single_dist)
            for processes in args.processes:
                rows.append(run_row(args, "1 node", single, "classic", processes))
                print(json.dumps(rows[-1]), flush=True)
            stop_broker(single_dir)  # its idle CPU is not the cluster's business
            cluster.up(timeout=120)
            for processes in args.processes:
                rows.append(run_row(args, "3-node cluster", cluster.amqp_url, "quorum", processes))
                print(json.dumps(rows[-1]), flush=True)
            if not args.skip_kill:
                kill = kill_row(args, cluster)
                print(json.dumps(kill), flush=True)
        finally:
            stop_broker(single_dir)
            cluster.down()
    print()
    print(table(rows, kill))
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "kill": kill, "cores": os.cpu_count()}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
