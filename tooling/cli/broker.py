"""``herald broker``: a local RabbitMQ for development, demos and tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from infra.masking import redact_url
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings

app = typer.Typer(help="Start, stop or check a local RabbitMQ node.", no_args_is_help=True)
DATA_DIR = Path(".herald/rabbitmq")


@app.command("up")
def up(data_dir: Path = typer.Option(DATA_DIR, help="Where the node keeps its data.")) -> None:
    """Use HERALD_AMQP_URL when it answers; otherwise start a node on 127.0.0.1."""
    from tooling.local import rabbitmq as rabbitmq_local

    url = cli_settings().amqp_url.get_secret_value()
    if "," in url:
        err.print("error: HERALD_AMQP_URL lists several nodes: use herald broker cluster up", markup=False)
        raise typer.Exit(2)
    try:
        rabbitmq_local.ensure_broker(url, data_dir)
    except rabbitmq_local.BrokerStartError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"RabbitMQ answers at {redact_url(url)}", markup=False)


@app.command("down")
def down(data_dir: Path = typer.Option(DATA_DIR)) -> None:
    """Stop a node that ``herald broker up`` started."""
    from tooling.local import rabbitmq as rabbitmq_local

    stopped = rabbitmq_local.stop_broker(data_dir)
    out.print("stopped" if stopped else "no local node was running")


@app.command("status")
def status() -> None:
    """Exit 0 when the broker (a node of HERALD_AMQP_URL's) answers, 1 when none does."""
    from tooling.local import rabbitmq as rabbitmq_local

    urls = cli_settings().amqp_urls
    answering = [url for url in urls if rabbitmq_local.broker_answers(url)]
    for url in urls:
        state = "answers" if url in answering else "does not answer"
        out.print(f"RabbitMQ {state} at {redact_url(url)}", markup=False)
    if not answering:
        raise typer.Exit(1)


cluster_app = typer.Typer(
    help="Start, stop or check a local RabbitMQ cluster (N nodes on 127.0.0.1).", no_args_is_help=True
)
app.add_typer(cluster_app, name="cluster")
CLUSTER_DIR = Path(".herald/rabbitmq-cluster")
_NODES = typer.Option(3, "--nodes", help="Nodes in the cluster (1-7).")
_BASE_PORT = typer.Option(
    5681, "--base-port", help="AMQP port of node 1; node I listens on BASE_PORT + I - 1."
)
_CLUSTER_DIR = typer.Option(CLUSTER_DIR, "--data-dir", help="Where the nodes keep their data (node-I each).")


def _cluster(data_dir: Path, nodes: int, base_port: int) -> Any:
    from tooling.local.rabbitmq_cluster import LocalCluster

    try:
        return LocalCluster(data_dir, nodes, base_port)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None


@cluster_app.command("up")
def cluster_up(nodes: int = _NODES, base_port: int = _BASE_PORT, data_dir: Path = _CLUSTER_DIR) -> None:
    """Start the nodes that do not answer, joined into one cluster; print the HERALD_AMQP_URL."""
    from tooling.local import rabbitmq as rabbitmq_local

    cluster = _cluster(data_dir, nodes, base_port)
    try:
        url = cluster.up()
    except rabbitmq_local.BrokerStartError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    members = cluster.running_members()
    if members and len(members) != nodes:
        err.print(
            f"error: {len(members)} of {nodes} nodes joined the cluster: {', '.join(members)}", markup=False
        )
        raise typer.Exit(1)
    out.print(f"{nodes} RabbitMQ nodes answer as one cluster. Use:", markup=False)
    out.print(f"export HERALD_AMQP_URL={url} HERALD_QUEUE_TYPE=quorum", markup=False, soft_wrap=True)


@cluster_app.command("down")
def cluster_down(nodes: int = _NODES, base_port: int = _BASE_PORT, data_dir: Path = _CLUSTER_DIR) -> None:
    """Stop the nodes that ``herald broker cluster up`` started (their data is kept)."""
    stopped = _cluster(data_dir, nodes, base_port).down()
    out.print(f"stopped {stopped} node(s)" if stopped else "no local cluster node was running")


@cluster_app.command("status")
def cluster_status(nodes: int = _NODES, base_port: int = _BASE_PORT, data_dir: Path = _CLUSTER_DIR) -> None:
    """Each node, whether it answers, and the cluster's running members; exit 1 unless all answer."""
    cluster = _cluster(data_dir, nodes, base_port)
    answering = cluster.answering()
    for node, answers in zip(cluster.nodes, answering, strict=True):
        state = "answers" if answers else "does not answer"
        out.print(f"node {node.index} ({node.name}) at 127.0.0.1:{node.port}: {state}", markup=False)
    members = cluster.running_members() if any(answering) else []
    if members:
        out.print(f"running members: {', '.join(sorted(members))}", markup=False)
    out.print(f"HERALD_AMQP_URL={cluster.amqp_url}", markup=False, soft_wrap=True)
    if not all(answering):
        raise typer.Exit(1)
