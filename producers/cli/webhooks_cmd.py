"""``herald webhooks``: signed webhooks back to the upstream (endpoints, deliveries, replay) and the
``webhooks`` Procfile process (``herald webhooks run``)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime
from types import FrameType
from typing import Any

import typer
from rich.table import Table

from infra import metrics, metrics_http
from infra.bootstrap import bootstrap, describe, shutdown
from infra.logs import configure_logging
from infra.shutdown import exit_after
from producers.cli.console import err, out, refusals
from producers.cli.context import settings as cli_settings
from producers.cli.store import open_store
from producers.webhooks import operations as ops
from producers.webhooks.runner import WebhookRunner

app = typer.Typer(help="Signed webhooks with every status, back to your system.", no_args_is_help=True)
log = logging.getLogger("herald.webhooks")

_ORG = typer.Option(..., "--org", help="The organisation the endpoint belongs to.")
_ENDPOINT = typer.Option(..., "--endpoint", help="The endpoint's id (whe_…), as add and list show it.")


def _json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


@app.command("add")
def add(
    url: str = typer.Argument(..., help="https:// URL (plain http:// only to a loopback host)."),
    org: str = _ORG,
    events: list[str] = typer.Option(
        [], "--events", help="Only these event types (repeat); all when absent."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Register an endpoint; prints its id and its whsec_ secret (shown once: store it now)."""
    with refusals():
        made = ops.add(open_store(), org, url, events or None)
    if as_json:
        _json(made)
        return
    err.print("store the secret now: it is shown only here (rotate-secret makes a new one)", markup=False)
    typer.echo(f"endpoint {made['endpoint_id']}")
    typer.echo(f"secret {made['secret']}")


@app.command("list")
def list_(org: str = _ORG, as_json: bool = typer.Option(False, "--json")) -> None:
    """The organisation's endpoints: URL, event filter, paused (and why), pending deliveries."""
    with refusals():
        endpoints = ops.list_(open_store(), org)
    if as_json:
        _json(endpoints)
        return
    table = Table(title=f"webhook endpoints of {org}")
    for column in ("endpoint", "url", "events", "pending", "paused"):
        table.add_column(column)
    for e in endpoints:
        paused = f"{e['paused_at']:%Y-%m-%d %H:%M} {e['paused_reason']}" if e["paused_at"] else ""
        table.add_row(
            e["endpoint_id"], e["url"], ", ".join(e["events"] or ["all"]), str(e["pending"]), paused
        )
    out.print(table)


@app.command("remove")
def remove(endpoint: str = _ENDPOINT, org: str = _ORG) -> None:
    """Stop sending to an endpoint (its delivery record stays)."""
    with refusals():
        ops.remove(open_store(), org, endpoint)
    out.print(f"removed {endpoint}", markup=False)


@app.command("rotate-secret")
def rotate_secret(
    endpoint: str = _ENDPOINT,
    org: str = _ORG,
    overlap_hours: float | None = typer.Option(
        None, "--overlap-hours", help="How long the old secret keeps signing too (default: the setting)."
    ),
) -> None:
    """A new secret; prints it. Both sign every message until the overlap ends."""
    with refusals():
        made = ops.rotate(open_store(), org, endpoint, overlap_hours)
    err.print(f"previous secrets sign until {made['previous_secrets_sign_until']}", markup=False)
    typer.echo(f"secret {made['secret']}")


@app.command("test")
def send_test(endpoint: str = _ENDPOINT, org: str = _ORG) -> None:
    """Send a signed webhook.test event now; prints the answer (exit 1 when not 2xx)."""
    with refusals():
        result = ops.send_test(open_store(), org, endpoint)
    said = f"HTTP {result['response']}" if result["response"] is not None else result["error"]
    out.print(f"{result['msg_id']}: {said} in {result['duration_ms']} ms", markup=False)
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("deliveries")
def deliveries(
    endpoint: str = _ENDPOINT,
    org: str = _ORG,
    limit: int = typer.Option(100, "--limit"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Each attempt, newest first: when, the event, its type, the response code, the outcome."""
    with refusals():
        rows = ops.deliveries(open_store(), org, endpoint, limit)
    if as_json:
        _json(rows)
        return
    table = Table(title=f"attempts to {endpoint}")
    for column in ("at", "webhook-id", "type", "response", "outcome", "ms"):
        table.add_column(column)
    for r in rows:
        response = str(r["response"]) if r["response"] is not None else (r["error"] or "")[:60]
        table.add_row(
            r["at"].isoformat(timespec="seconds"),
            r["msg_id"],
            r["type"],
            response,
            r["outcome"],
            str(r["duration_ms"]),
        )
    out.print(table)


@app.command("replay")
def replay(
    endpoint: str = _ENDPOINT,
    org: str = _ORG,
    since: datetime = typer.Option(..., "--since", help="ISO time: every event since then is sent again."),
) -> None:
    """Send again every event since a time (same webhook-id: a receiver that deduplicates can tell)."""
    with refusals():
        result = ops.replay(open_store(), org, endpoint, since)
    out.print(f"queued {result['queued']} events for {endpoint}", markup=False)


@app.command("resume")
def resume(endpoint: str = _ENDPOINT, org: str = _ORG) -> None:
    """Unpause an endpoint: what waited while it was paused is sent now, in order."""
    with refusals():
        result = ops.resume(open_store(), org, endpoint)
    out.print(f"resumed {endpoint}: {result['pending']} pending", markup=False)


@app.command("run")
def run(once: bool = typer.Option(False, "--once", help="One round, then exit (tests, cron).")) -> None:
    """The webhooks process (a Procfile line): deliver the status outbox to every endpoint and to
    the PREFIX.notifications exchange. Stops cleanly on SIGTERM or SIGINT."""
    settings = cli_settings()
    configure_logging(settings)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            exit_after(settings.shutdown_timeout_seconds)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services = bootstrap(settings)
    log.info("webhooks booted", extra=describe(services))
    runner = WebhookRunner(services)
    try:
        if once:
            counts = runner.round()
            out.print(
                f"fanned out {counts.fanned_out}, delivered {counts.delivered}, failed {counts.failed}, "
                f"published {counts.published}, pruned {counts.pruned}",
                markup=False,
            )
            return
        for outcome in metrics.WEBHOOK_OUTCOMES:
            metrics.WEBHOOKS.labels(outcome=outcome)  # every series shown from the first scrape
        metrics_http.serve("webhooks", settings)  # never stops the process (off, or port taken)
        runner.run(stop)
    finally:
        runner.close()
        shutdown(services)
