"""Run every benchmark, keep their figures in ``benchmarks/results.json`` and draw ``results.png``.

    python benchmarks/run_all.py [--quick]

Each benchmark ends its output with one JSON line; this collects those lines (the JSON file is
git-ignored: figures of one machine) and draws the chart the README shows (committed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: name → (script, arguments for a full run, arguments for --quick)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "publish": ("publish.py", [], ["--events", "5000"]),
    "route": ("route.py", [], []),
    "e2e": ("e2e.py", [], ["--events", "500", "--latency-seconds", "5"]),
}


def run(name: str, quick: bool) -> dict[str, Any]:
    """Run one benchmark (its output passes through); returns its last JSON line."""
    script, full, short = BENCHMARKS[name]
    argv = [sys.executable, str(HERE / script), *(short if quick else full)]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{script} failed ({result.returncode})")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{script} printed no JSON summary")
    summary = dict(json.loads(lines[-1]))
    summary["wall_seconds"] = round(time.monotonic() - started, 1)
    return summary


def draw(results: dict[str, Any], path: Path) -> None:
    """Three panels: publishing, routing and the whole pipeline, each next to its baseline."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
    publish, route, e2e = results["publish"], results["route"], results["e2e"]
    axes[0].bar(
        ["Publisher.\npublish_many", "dramatiq\nactor.send"],
        [publish["publish_many_events_per_s"], publish["actor_send_events_per_s"]],
        color=["tab:blue", "tab:gray"],
    )
    axes[0].set_title(f"publish (ratio {publish['ratio']})")
    axes[0].set_ylabel("events/s")
    sizes = route["sizes"]
    labels = [f"{row['contacts']} contacts" for row in sizes]
    x = range(len(sizes))
    axes[1].bar([i - 0.2 for i in x], [row["route_events_per_s"] for row in sizes], 0.4, label="route")
    axes[1].bar(
        [i + 0.2 for i in x],
        [row["noop_messages_per_s"] for row in sizes],
        0.4,
        label="no-op",
        color="tab:gray",
    )
    axes[1].set_xticks(list(x), labels)
    axes[1].set_title("route stage")
    axes[1].set_ylabel("events/s")
    axes[1].legend()
    axes[2].bar(
        ["pipeline", "no-op drain"],
        [e2e["notifications_per_s"], e2e["noop_messages_per_s"]],
        color=["tab:blue", "tab:gray"],
    )
    axes[2].set_title(f"end to end (p50 {e2e['p50_ms']} ms, p99 {e2e['p99_ms']} ms)")
    axes[2].set_ylabel("notifications/s")
    fig.suptitle(f"herald benchmarks — {time.strftime('%Y-%m-%d')}, {e2e.get('cores', '?')} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the figures)")
    parser.add_argument("--only", choices=list(BENCHMARKS), action="append", help="run just these")
    args = parser.parse_args()
    results_path, chart = HERE / "results.json", HERE / "results.png"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.only or list(BENCHMARKS):
        results[name] = run(name, args.quick)
        results_path.write_text(json.dumps(results, indent=2) + "\n")  # after each: a failure keeps the rest
    if all(name in results for name in BENCHMARKS):
        draw(results, chart)
        print(f"wrote {results_path.relative_to(HERE.parent)} and {chart.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
