"""The local RabbitMQ launcher: starts a real node on loopback, under our data dir."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from tests.conftest import wait_for
from tooling.local import rabbitmq as rabbitmq_local
from tooling.local.ports import free_port
from tooling.local.rabbitmq import BrokerStartError, broker_answers, ensure_broker, stop_broker


def _listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses with a socket listening on ``port``, read from /proc (no traffic)."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
            addresses.add(socket.inet_ntoa(bytes.fromhex(host_hex)[::-1]))
    return addresses


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("rabbitmq")
    url = f"amqp://guest:guest@127.0.0.1:{free_port(also_free=20000)}/%2F"
    started = time.monotonic()
    ensure_broker(url, data_dir, timeout=120)
    print(f"node started in {time.monotonic() - started:.1f}s")
    yield url, data_dir
    stop_broker(data_dir)


def test_a_closed_port_does_not_answer_and_says_so_quickly() -> None:
    started = time.monotonic()
    assert not broker_answers(f"amqp://guest:guest@127.0.0.1:{free_port(also_free=20000)}/%2F")
    assert time.monotonic() - started < 3


def test_the_started_node_carries_messages(node: tuple[str, Path]) -> None:
    url, _ = node
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.queue_declare("launcher-check", auto_delete=True)
        channel.basic_publish("", "launcher-check", b"hello")
        method, _props, body = channel.basic_get("launcher-check", auto_ack=True)
        assert method is not None
        assert body == b"hello"
    finally:
        connection.close()


def test_asking_again_returns_at_once_without_a_second_node(node: tuple[str, Path]) -> None:
    url, data_dir = node
    pid_before = (data_dir / "launcher.pid").read_text()
    started = time.monotonic()
    assert ensure_broker(url, data_dir) == url
    assert time.monotonic() - started < 3
    assert (data_dir / "launcher.pid").read_text() == pid_before


def test_the_node_keeps_its_data_under_the_data_dir_and_listens_on_loopback_only(
    node: tuple[str, Path],
) -> None:
    url, data_dir = node
    assert (data_dir / "mnesia").is_dir()
    port = pika.URLParameters(url).port
    assert _listening_addresses(port) == {"127.0.0.1"}
    assert _listening_addresses(port + 20000) == {"127.0.0.1"}  # Erlang distribution
    assert _listening_addresses(4369) <= {"127.0.0.1"}  # epmd (may be shared with another node)


def test_a_remote_broker_that_does_not_answer_is_an_error_naming_it_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand in for the network: nothing but loopback may be contacted from here.
    monkeypatch.setattr(rabbitmq_local, "broker_answers", lambda url, timeout=2.0: False)
    with pytest.raises(BrokerStartError) as info:
        ensure_broker("amqp://guest:hunter2@broker.example:5672/%2F", tmp_path, timeout=5)
    assert "broker.example" in str(info.value)
    assert "hunter2" not in str(info.value)
    assert not (tmp_path / "launcher.pid").exists()


def test_stopping_the_node_stops_it(tmp_path: Path) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port(also_free=20000)}/%2F"
    ensure_broker(url, tmp_path, timeout=120)
    assert stop_broker(tmp_path)
    wait_for(lambda: not broker_answers(url, timeout=1), timeout=30, what="the node to stop")
    assert not stop_broker(tmp_path)
