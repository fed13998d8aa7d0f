"""A RabbitMQ cluster on loopback for development, tests and benchmarks: N nodes as the current
user, each with its own AMQP port, Erlang distribution port and data directory, joined into one
cluster.

The first node starts alone; every other node starts with the first as its peer
(``classic_config`` peer discovery), so on its first boot it joins the first's cluster, and when
started again later from its data it rejoins it by itself. Each node is a ``tooling.local.rabbitmq``
node, under ``DATA_DIR/node-I``; they share one Erlang cookie.

    herald broker cluster up|down|status [--nodes 3] [--base-port 5681]
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tooling.local.rabbitmq import broker_answers, ensure_broker, node_name, stop_broker

DEFAULT_NODES = 3
#: Node I listens on BASE_PORT + I - 1 (5681, 5682, 5683: beside the single node's 5672).
BASE_PORT = 5681
#: The most nodes ``herald broker cluster`` starts (each is a whole Erlang VM).
MAX_NODES = 7


def _ctl_binary() -> str | None:
    # The script itself: /usr/sbin/rabbitmqctl switches to the rabbitmq user and its cookie.
    for candidate in ("/usr/lib/rabbitmq/bin/rabbitmqctl", "/usr/sbin/rabbitmqctl"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("rabbitmqctl")


@dataclass(frozen=True)
class ClusterNode:
    """One node of a local cluster."""

    index: int
    port: int
    data_dir: Path
    dist_port: int

    @property
    def url(self) -> str:
        """Its AMQP URL (the guest user, which RabbitMQ admits on loopback only)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def name(self) -> str:
        """Its Erlang node name."""
        return node_name(self.port)


class LocalCluster:
    """``nodes`` RabbitMQ nodes under ``data_dir``, on ports ``base_port`` … (``dist_ports`` each,
    else the AMQP port + 20000)."""

    def __init__(
        self,
        data_dir: Path,
        nodes: int = DEFAULT_NODES,
        base_port: int = BASE_PORT,
        *,
        ports: list[int] | None = None,
        dist_ports: list[int] | None = None,
    ) -> None:
        if not 1 <= nodes <= MAX_NODES:
            raise ValueError(f"--nodes must be between 1 and {MAX_NODES}, not {nodes}")
        ports = ports or [base_port + i for i in range(nodes)]
        highest = 65535 if dist_ports else 65535 - 20000
        if len(ports) != nodes or not all(1024 <= p <= highest for p in ports):
            raise ValueError(
                f"--base-port must leave each of the {nodes} nodes a port between 1024 and "
                f"{highest} (its distribution port is 20000 above): {ports[0]}..{ports[-1]}"
            )
        dist = dist_ports or [p + 20000 for p in ports]
        self.data_dir = Path(data_dir).resolve()
        self.nodes = [
            ClusterNode(i + 1, port, self.data_dir / f"node-{i + 1}", dist[i]) for i, port in enumerate(ports)
        ]

    @property
    def urls(self) -> list[str]:
        """Each node's AMQP URL, in order."""
        return [node.url for node in self.nodes]

    @property
    def amqp_url(self) -> str:
        """The ``HERALD_AMQP_URL`` to use: every node, first to last."""
        return ",".join(self.urls)

    def up(self, timeout: float = 90.0) -> str:
        """Start every node that does not answer (the first before the others, which join it);
        returns ``amqp_url``. ``BrokerStartError`` when a node does not come up."""
        self._share_cookie()
        indexes = [node.index for node in self.nodes]
        if not (self.nodes[0].data_dir / "mnesia").exists():
            # A new cluster: the others join the first, which must answer before they look for it.
            self.start(1, timeout)
            indexes = indexes[1:]
        # Nodes started again wait for the peers they knew, so they start together.
        with ThreadPoolExecutor(max_workers=max(1, len(indexes))) as pool:
            list(pool.map(lambda index: self.start(index, timeout), indexes))
        return self.amqp_url

    def start(self, index: int, timeout: float = 90.0) -> None:
        """Start node ``index`` (1-based) if it does not answer: a fresh node joins the first
        node's cluster, one started again from its data rejoins the cluster it was in."""
        node = self.nodes[index - 1]
        node.data_dir.mkdir(parents=True, exist_ok=True)
        ensure_broker(
            node.url, node.data_dir, timeout=timeout, dist_port=node.dist_port, extra_conf=self._peers()
        )

    def stop(self, index: int) -> bool:
        """Stop node ``index`` gracefully; True if it was running."""
        return stop_broker(self.nodes[index - 1].data_dir)

    def kill(self, index: int) -> bool:
        """SIGKILL node ``index``: a crash, as a host losing power; True if it was running."""
        return stop_broker(self.nodes[index - 1].data_dir, timeout=10.0, sig=signal.SIGKILL)

    def down(self) -> int:
        """Stop every node, last first (the first, which the others join, goes last); how many ran."""
        return sum(self.stop(node.index) for node in reversed(self.nodes))

    def answering(self) -> list[bool]:
        """Whether each node answers AMQP, in order."""
        return [broker_answers(node.url, timeout=1.0) for node in self.nodes]

    def running_members(self, timeout: float = 30.0) -> list[str]:
        """The running nodes of the cluster as a node that answers sees them (its Erlang names);
        empty when none answers or ``rabbitmqctl`` cannot tell."""
        ctl = _ctl_binary()
        for node, answers in zip(self.nodes, self.answering(), strict=True):
            if not answers or ctl is None:
                continue
            try:
                result = subprocess.run(
                    [ctl, "-n", node.name, "cluster_status", "--formatter", "json"],
                    env={**os.environ, "HOME": str(node.data_dir), "ERL_EPMD_ADDRESS": "127.0.0.1"},
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    check=False,
                )
                return [str(name) for name in json.loads(result.stdout)["running_nodes"]]
            except (OSError, subprocess.TimeoutExpired, ValueError, KeyError, TypeError):
                continue
        return []

    def _peers(self) -> str:
        first = self.nodes[0].name
        return (
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"cluster_formation.classic_config.nodes.1 = {first}\n"
        )

    def _share_cookie(self) -> None:
        """One Erlang cookie for every node (each node's HOME is its data directory)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shared = self.data_dir / "erlang.cookie"
        if not shared.exists():
            shared.write_text(secrets.token_hex(16))
            shared.chmod(0o400)
        cookie = shared.read_text()
        for node in self.nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            path = node.data_dir / ".erlang.cookie"
            if not path.exists():
                path.write_text(cookie)
                path.chmod(0o400)
