"""herald on a 3-node RabbitMQ cluster (quorum queues) and one PostgreSQL, with "hosts" simulated
on this machine: groups of Procfile processes with environments of their own (their own node
order in ``HERALD_AMQP_URL``). A node killed, a node stopped and started, the whole cluster down:
nothing lost, nothing sent twice, and the processes of the host that lost its node reconnect to
a surviving one by themselves.

The cluster is the module's own (ports, node names and data under a tmp dir), started once for
the module; each test leaves every node running.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra import topology
from tests.conftest import PostgresSchemas, wait_for
from tests.e2e.conftest import Deployment, write_jsonl
from tests.faults.helpers import (
    DELIVERED,
    SENT,
    STAGES,
    assert_exactly_once,
    connect,
    count,
    delete_queues,
    dropped_callbacks,
    faults,
    prepare,
    publish,
    publish_raw,
    start_all,
    sweep_lost_statuses,
    wait_delivered,
)
from tooling.demo.data import invoice_events
from tooling.local.ports import free_ports
from tooling.local.rabbitmq_cluster import LocalCluster

#: Every stage an invoice goes through, the plain ingest consumer, and the api (status callbacks).
NAMES = (*STAGES, "ingest", "api")
#: The longest a host's processes take to consume again from a surviving node after theirs died:
#: dramatiq restarts a lost consumer after 3 s, ingest after 0.5 s; connecting is at once.
RECONNECT_BOUND_SECONDS = 20.0
#: The whole cluster's outage in the second test.
CLUSTER_DOWN_SECONDS = 10


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # Outside the ephemeral range: a node restarted on its port must not find a client socket there.
    ports = free_ports(6)
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), 3, ports=ports[:3], dist_ports=ports[3:])
    cluster.up(timeout=120)
    yield cluster
    cluster.down()


@pytest.fixture
def hosts(
    herald_env: dict[str, str], tmp_path: Path, cluster: LocalCluster, postgres_schemas: PostgresSchemas
) -> Iterator[tuple[Deployment, Deployment]]:
    """Host A lists nodes 1, 2, 3; host B lists 2, 3, 1. One queue prefix, one PostgreSQL schema."""
    cluster.up(timeout=120)  # every node answers at the start, whatever the test before did
    urls = cluster.urls
    with postgres_schemas.fresh() as database_url:
        env = {**herald_env, "HERALD_QUEUE_TYPE": "quorum", "HERALD_METRICS_PORT": "0"}
        a = Deployment({**env, "HERALD_AMQP_URL": ",".join(urls)}, tmp_path / "host-a", database_url)
        b = Deployment(
            {**env, "HERALD_AMQP_URL": ",".join(urls[1:] + urls[:1])}, tmp_path / "host-b", database_url
        )
        for host in (a, b):
            host.workdir.mkdir()
        b.env["HERALD_QUEUE_PREFIX"] = a.env["HERALD_QUEUE_PREFIX"]
        yield a, b
        for host in (b, a):
            host.stop_all()
        # Every node back first: deleting a quorum queue waits for its members (seconds per queue).
        cluster.up(timeout=120)
        delete_queues(a)


def share_sandboxes(a: Deployment, b: Deployment) -> None:
    """Host B takes host A's settings (the provider sandboxes: one Twilio, as in production; the
    run's settings) but for its own nodes and its own api."""
    own = ("HERALD_AMQP_URL", "HERALD_API_PORT", "HERALD_PUBLIC_URL")
    b.env.update(
        {name: value for name, value in a.env.items() if name.startswith("HERALD_") and name not in own}
    )


def consumers(host: Deployment, stages: tuple[str, ...]) -> list[int]:
    """Consumers of each stage's queue (0 while that cannot be told). A quorum queue keeps the
    consumers of a node that went down, as suspected down, so this only counts them coming."""
    prefix = host.env["HERALD_QUEUE_PREFIX"]
    try:
        connection = connect(host)
    except Exception:
        return [0] * len(stages)
    counts = []
    try:
        for stage in stages:
            channel = connection.channel()
            try:
                method = channel.queue_declare(topology.queue_name(prefix, stage), passive=True).method
                counts.append(int(method.consumer_count))
                channel.close()
            except Exception:  # not declared yet
                counts.append(0)
    finally:
        if connection.is_open:
            connection.close()
    return counts


def connections(group: int, port: int) -> int:
    """The established TCP connections to ``port`` on loopback that processes of the process
    group ``group`` hold (a Procfile process and its children: dramatiq's worker processes)."""
    inodes: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            # pgrp is the 3rd field after the parenthesised command name.
            if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    remote = f"0100007F:{port:04X}"
    found = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2] == remote and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
            found += 1
    return found


def attempted(host: Deployment) -> list[datetime]:
    """When each SMS sent was attempted, in order."""
    rows = host.query(
        "SELECT attempted_at FROM notifications"
        " WHERE channel = 'sms' AND reason = 'send' AND provider_id IS NOT NULL"
    )
    return sorted(datetime.fromisoformat(str(r[0])).replace(tzinfo=UTC) for r in rows)


def test_two_hosts_ride_out_the_sigkill_of_one_hosts_node_and_share_the_rate_limit(
    hosts: tuple[Deployment, Deployment], cluster: LocalCluster
) -> None:
    a, b = hosts
    rate = 20.0  # SMS a second from the one sender, across both hosts
    events, late = 80, 20
    sandbox_url = prepare(
        a, customers=events + late, HERALD_STAGE_BATCH_SIZE="10", HERALD_SMS_SEGMENTS_PER_SECOND=str(rate)
    )
    share_sandboxes(a, b)
    faults(sandbox_url, delay_seconds=0.05)
    start_all(a, NAMES)
    start_all(b, NAMES)
    stages = (*STAGES, "ingest")
    wait_for(lambda: consumers(a, stages) == [2] * len(stages), timeout=90, what="both hosts consuming")
    # Host B's stage processes are on node 2, the first of their list; each consumes on a connection
    # of its own per queue (a dramatiq stage: its queue and its delay queue; ingest: its queue).
    groups = [p.pid for p in b.processes[: len(stages)]]
    consuming = [2] * len(STAGES) + [1]
    assert all(connections(g, cluster.nodes[1].port) >= n for g, n in zip(groups, consuming, strict=True))

    publish(b, events, run="cluster-kill")  # through host B's first node, the one about to die
    wait_for(lambda: count(a, SENT) >= 20, timeout=60, what="20 SMS sent")
    cluster.kill(2)  # host B's first node: SIGKILL, no goodbye to anyone
    killed = time.monotonic()
    assert count(a, SENT) < events, "the kill must land mid-run"

    # Every stage process of host B consumes again from node 3, its next node, within the bound.
    wait_for(
        lambda: all(
            connections(g, cluster.nodes[2].port) >= n for g, n in zip(groups, consuming, strict=True)
        ),
        timeout=RECONNECT_BOUND_SECONDS + 30,
        interval=0.25,
        what="host B's stage processes connected to node 3",
    )
    reconnected = time.monotonic() - killed
    print(f"host B's processes reconnected to node 3 {reconnected:.1f}s after node 2 was killed")
    assert reconnected <= RECONNECT_BOUND_SECONDS

    publish_raw(b, invoice_events(late, run="cluster-kill", start=events + 1))  # through ingest
    total = events + late
    wait_delivered(a, total, timeout=120)
    assert all(p.poll() is None for host in hosts for p in host.processes), "every process rode it out"
    assert_exactly_once(a, sandbox_url, total)
    times = attempted(a)
    # One limit across both hosts: total SMS from one sender take at least (total - 1) / rate.
    assert (times[-1] - times[0]).total_seconds() >= (total - 1) / rate - 0.05
    for host in (a, b):  # both hosts sent some, so the limit was shared, not kept per host
        assert "sms accepted" in host.log("sms-1.log")


def test_a_node_stopped_and_started_then_the_whole_cluster_down_lose_nothing_and_double_nothing(
    hosts: tuple[Deployment, Deployment], cluster: LocalCluster
) -> None:
    a, _ = hosts  # one host: this is about the cluster, not about hosts
    batch = 40
    sandbox_url = prepare(a, customers=3 * batch, HERALD_STAGE_BATCH_SIZE="10")
    faults(sandbox_url, delay_seconds=0.1)
    processes = start_all(a, NAMES)
    stages = (*STAGES, "ingest")
    wait_for(lambda: consumers(a, stages) == [1] * len(stages), timeout=90, what="the host consuming")

    publish(a, batch, run="cluster-stop")
    wait_for(lambda: count(a, SENT) >= 5, timeout=60, what="5 SMS sent")
    cluster.stop(1)  # the host's first node, gracefully: its connections are closed
    publish_raw(a, invoice_events(batch, run="cluster-stop", start=batch + 1))  # to node 2, via ingest
    wait_for(lambda: count(a, SENT) >= batch + 5, timeout=90, what="SMS sent with node 1 stopped")
    cluster.start(1)  # it rejoins the cluster with its data

    wait_for(lambda: count(a, SENT) >= batch + 10, timeout=90, what="SMS sent after node 1 rejoined")
    cluster.down()
    time.sleep(CLUSTER_DOWN_SECONDS)  # the outage itself: nothing is awaited or asserted here
    cluster.up(timeout=120)

    publish_raw(a, invoice_events(batch, run="cluster-stop", start=2 * batch + 1))
    total = 3 * batch
    wait_for(lambda: count(a, SENT) == total, timeout=120, what=f"{total} SMS sent")
    # Callbacks that came while no node answered are dropped after the api held them (as in
    # test_broker_restart); the status sweep recovers them.
    wait_for(
        lambda: count(a, DELIVERED) + len(dropped_callbacks(a)) >= total,
        timeout=120,
        interval=0.5,
        what="every callback delivered or dropped",
    )
    assert all(p.poll() is None for p in processes.values()), "every process rode out the outage"
    sweep_lost_statuses(a)
    wait_delivered(a, total, timeout=90)
    assert_exactly_once(a, sandbox_url, total)
    assert faults(sandbox_url)["requests"] == total  # the provider was asked once per SMS


def test_herald_publish_status_and_dlq_go_through_the_second_node_when_the_first_is_down(
    hosts: tuple[Deployment, Deployment], cluster: LocalCluster
) -> None:
    a, _ = hosts
    cluster.stop(1)
    try:
        items = invoice_events(5, run="first-down")
        result = a.herald("publish", str(write_jsonl(a.workdir / "events.jsonl", items)))
        assert result.returncode == 0, result.stderr
        assert "published 5 events" in result.stdout
        connection = connect(a)  # node 2 now: the route queue holds the five
        try:
            queue = topology.queue_name(a.env["HERALD_QUEUE_PREFIX"], "route")
            # The five go together, in one events.published message.
            assert connection.channel().queue_declare(queue, passive=True).method.message_count == 1
        finally:
            connection.close()
        status = a.herald("status", "--json")
        assert status.returncode == 0, status.stderr
        route = next(row for row in json.loads(status.stdout)["stages"] if row["stage"] == "route")
        assert route["ready"] == 1
        dlq = a.herald("dlq", "list", "--json")
        assert dlq.returncode == 0, dlq.stderr
        assert set(json.loads(dlq.stdout).values()) == {0}
    finally:
        cluster.start(1)
