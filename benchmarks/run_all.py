"""Run every benchmark, keep their figures in ``benchmarks/results.json`` and draw ``results.png``.

    python benchmarks/run_all.py [--quick] [--only e2e ...] [--save-before]

Each benchmark ends its output with one JSON line; this collects those lines (the JSON file is
git-ignored: figures of one machine) and draws the chart the README shows (committed).

The end-to-end figures are drawn next to a committed "before" (``benchmarks/results-before.json``:
the figures of the per-message pipeline, measured before issue 15 reworked it into batches), with
the targets as lines. ``--save-before`` makes this run's figures the new "before".

The end-to-end runs start a RabbitMQ node of their own (``e2e.py --private-broker``), so the CPU
RabbitMQ spends is this run's alone; with ``HERALD_AMQP_URL`` set they use that broker instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BEFORE = HERE / "results-before.json"
_BROKER = [] if os.environ.get("HERALD_AMQP_URL") else ["--private-broker"]
_E2E_QUICK = ["--events", "500", "--latency-seconds", "5", "--low-rate-seconds", "5", "--idle-samples", "3"]
#: name → (script, arguments for a full run, arguments for --quick)
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "publish": ("publish.py", [], ["--events", "5000"]),
    "route": ("route.py", [], []),
    "e2e": ("e2e.py", [*_BROKER], [*_BROKER, *_E2E_QUICK]),
    "e2e-postgresql": (
        "e2e.py",
        [*_BROKER, "--database", "postgresql", "--scaling", "1,2,4"],
        [
            *_BROKER,
            "--database",
            "postgresql",
            "--scaling",
            "1,2",
            *_E2E_QUICK,
            "--events",
            "300",
            "--latency-seconds",
            "2",
        ],
    ),
}
#: The parts of a notification's CPU, stacked in the chart.
CPU_PARTS = ("route", "render", "sms", "history", "rabbitmq", "postgresql")
E2E = (("e2e", "SQLite"), ("e2e-postgresql", "PostgreSQL"))


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
    summary["quick"] = quick
    return summary


def _commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "?"


def _short(value: float) -> str:
    """A bar's label: 48, 15.5, 2.1k, 50k."""
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.3g}"


def _grouped(ax: Any, groups: list[str], series: list[tuple[str, list[float | None], str]]) -> list[float]:
    """Bars side by side per group (``None``: no bar); returns each group's centre."""
    width = 0.8 / max(1, len(series))
    centres = [float(i) for i in range(len(groups))]
    for k, (label, values, colour) in enumerate(series):
        xs = [c - 0.4 + width * (k + 0.5) for c in centres]
        shown = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if not shown:
            continue
        bars = ax.bar([x for x, _ in shown], [v for _, v in shown], width, label=label, color=colour)
        ax.bar_label(bars, labels=[_short(v) for _, v in shown], fontsize=7, padding=1)
    ax.set_xticks(centres, groups)
    return centres


def _target(ax: Any, centre: float, value: float) -> None:
    """A target as a short dashed line across one group."""
    ax.hlines(value, centre - 0.45, centre + 0.45, colors="tab:red", linestyles="dashed", linewidth=1.2)


def _versus(
    before: list[float | None], after: list[float | None]
) -> list[tuple[str, list[float | None], str]]:
    """The two series of a before/after panel, in their colours."""
    return [("before", before, "tab:gray"), ("after", after, "tab:blue")]


def _throughput_panel(
    ax: Any, groups: list[str], series: list[tuple[str, list[float | None], str]], title: str
) -> None:
    """Notifications/s per group on a log scale, each group with the 1000/s target."""
    for centre in _grouped(ax, groups, series):
        _target(ax, centre, 1000)
    ax.set_yscale("log")
    ax.set_ylabel("notifications/s (log)")
    ax.set_title(title)
    ax.legend(fontsize=8)


def _e2e_panels(axes: Any, after: dict[str, Any], before: dict[str, Any]) -> None:
    """Notifications/s, CPU per notification, latencies and scaling: before next to after."""
    runs = [(key, label) for key, label in E2E if key in after or key in before]
    labels = [label for _, label in runs]

    def figure(results: dict[str, Any], key: str, name: str) -> float | None:
        value = results.get(key, {}).get(name)
        return None if value is None else float(value)

    # notifications/s
    _throughput_panel(
        axes[0],
        labels,
        _versus(
            [figure(before, k, "notifications_per_s") for k, _ in runs],
            [figure(after, k, "notifications_per_s") for k, _ in runs],
        ),
        "end to end, 1 process per stage (target 1000/s)",
    )

    # CPU per notification, stacked by part
    ax = axes[1]
    colours = dict(zip(CPU_PARTS, ("C0", "C1", "C2", "C3", "C4", "C5"), strict=True))
    ticks, names, labelled = [], [], set()
    for i, (key, label) in enumerate(runs):
        for j, (which, results) in enumerate((("before", before), ("after", after))):
            per = results.get(key, {}).get("cpu_ms_per_notification")
            x = i + (j - 0.5) * 0.4
            ticks.append(x)
            names.append(f"{label}\n{which}")
            if not per:
                continue
            bottom = 0.0
            for part in CPU_PARTS:
                value = float(per.get(part, 0.0))
                if value:
                    legend = None if part in labelled else part
                    labelled.add(part)
                    ax.bar(x, value, 0.35, bottom=bottom, color=colours[part], label=legend)
                    bottom += value
            ax.annotate(f"{bottom:.1f}", (x, bottom), ha="center", va="bottom", fontsize=7)
        _target(ax, float(i), 2.0)
    ax.set_xticks(ticks, names, fontsize=7)
    ax.set_ylabel("CPU ms per notification")
    ax.set_title("CPU per notification (target 2 ms: stages + RabbitMQ)")
    ax.legend(fontsize=7, ncols=2)

    # latencies
    ax = axes[2]
    kinds = (
        ("idle_single_median_ms", "idle, 1 event", 100),
        ("low_rate_p50_ms", "p50 at 20/s", 20),
        ("p99_ms", "p99 at 200/s", 100),
    )
    groups = [f"{label}\n{text}" for _, label in runs for _, text, _ in kinds]
    keys = [(k, name) for k, _ in runs for name, _, _ in kinds]
    series = _versus(
        [figure(before, k, name) for k, name in keys], [figure(after, k, name) for k, name in keys]
    )
    centres = _grouped(ax, groups, series)
    targets = [target for _ in runs for _, _, target in kinds]
    for centre, target in zip(centres, targets, strict=True):
        _target(ax, centre, target)
    ax.set_yscale("log")
    ax.set_ylabel("ms, publish → provider (log)")
    ax.set_title("latency (idle < 100, p50 < 20, p99 < 100 ms)")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=8)


def _scaling_panel(ax: Any, after: dict[str, Any], before: dict[str, Any]) -> None:
    def rows(results: dict[str, Any]) -> dict[int, float]:
        scaling = results.get("e2e-postgresql", {}).get("scaling") or []
        return {int(row["processes"]): float(row["notifications_per_s"]) for row in scaling}

    was, now = rows(before), rows(after)
    counts = sorted(set(was) | set(now))
    if not counts:
        ax.set_axis_off()
        ax.set_title("scaling: no --scaling run")
        return
    _throughput_panel(
        ax,
        [f"{n} process{'es' if n > 1 else ''}\nper stage" for n in counts],
        _versus([was.get(n) for n in counts], [now.get(n) for n in counts]),
        "PostgreSQL: grows with processes",
    )


def draw(results: dict[str, Any], before: dict[str, Any], path: Path) -> None:
    """Publishing and routing next to their baselines; the whole pipeline before and after."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    publish, route = results.get("publish"), results.get("route")
    ax = axes[0][0]
    if publish:
        ax.bar(
            ["Publisher.\npublish_many", "dramatiq\nactor.send"],
            [publish["publish_many_events_per_s"], publish["actor_send_events_per_s"]],
            color=["tab:blue", "tab:gray"],
        )
        ax.set_title(f"publish (ratio {publish['ratio']})")
        ax.set_ylabel("events/s")
    ax = axes[0][1]
    if route:
        sizes = route["sizes"]
        x = range(len(sizes))
        ax.bar([i - 0.2 for i in x], [row["route_events_per_s"] for row in sizes], 0.4, label="route")
        ax.bar(
            [i + 0.2 for i in x],
            [row["noop_messages_per_s"] for row in sizes],
            0.4,
            label="no-op",
            color="tab:gray",
        )
        ax.set_xticks(list(x), [f"{row['contacts']} contacts" for row in sizes])
        ax.set_title("route stage")
        ax.set_ylabel("events/s")
        ax.legend()
    _scaling_panel(axes[0][2], results, before)
    _e2e_panels(axes[1], results, before)
    meta = before.get("_meta", {})
    cores = results.get("e2e", {}).get("cores", "?")
    fig.suptitle(
        f"herald benchmarks — after: {time.strftime('%Y-%m-%d')}, {cores} cores; "
        f"before: {meta.get('date', '—')} (commit {meta.get('commit', '—')}); red dashes: targets"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test of the figures)")
    parser.add_argument("--only", choices=list(BENCHMARKS), action="append", help="run just these")
    parser.add_argument(
        "--save-before",
        action="store_true",
        help=f"also keep this run's figures as the 'before' ({BEFORE.relative_to(HERE.parent)})",
    )
    parser.add_argument("--draw-only", action="store_true", help="no runs: draw from results.json")
    args = parser.parse_args()
    results_path, chart = HERE / "results.json", HERE / "results.png"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in [] if args.draw_only else args.only or list(BENCHMARKS):
        results[name] = run(name, args.quick)
        results_path.write_text(json.dumps(results, indent=2) + "\n")  # after each: a failure keeps the rest
    if args.save_before:
        meta = {
            "commit": _commit(),
            "date": time.strftime("%Y-%m-%d"),
            "note": "the per-message pipeline, before issue 15's batches",
        }
        BEFORE.write_text(json.dumps({"_meta": meta, **results}, indent=2) + "\n")
        print(f"wrote {BEFORE.relative_to(HERE.parent)}")
    before: dict[str, Any] = json.loads(BEFORE.read_text()) if BEFORE.exists() else {}
    if all(name in results for name in BENCHMARKS):
        draw(results, before, chart)
        print(f"wrote {results_path.relative_to(HERE.parent)} and {chart.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
