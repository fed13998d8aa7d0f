"""Several broker nodes in HERALD_AMQP_URL: the list, its hostile input, the start-up checks and
the publisher moving on to the next node (no broker needed: nothing here connects)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from infra import amqp_nodes
from infra.bootstrap import bootstrap, check_cluster
from infra.broker import build_broker
from infra.errors import BrokerUnavailable, ConfigurationError, MessageNacked
from infra.settings import Settings
from producers.cli import app
from producers.publisher import Publisher
from tests.factories import invoice_created

A = "amqp://herald:s3cret@mq1.example:5672/billing"
B = "amqp://herald:s3cret@mq2.example:5673/billing"
C = "amqps://herald:s3cret@mq3.example/billing"


def _cluster(**fields: Any) -> Settings:
    return Settings(amqp_url=f"{A},{B}", **fields)  # type: ignore[arg-type]


def test_one_url_is_a_list_of_one_and_a_comma_separated_list_keeps_its_order() -> None:
    assert amqp_nodes.split_urls(A) == [A]
    assert amqp_nodes.split_urls(f" {B} , {A},{C} ") == [B, A, C]
    assert Settings(amqp_url=f"{A},{B}").amqp_urls == [A, B]  # type: ignore[arg-type]
    assert amqp_nodes.describe([A, B, C]) == "mq1.example:5672, mq2.example:5673, mq3.example:5671"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (f"{A},", "AMQP URL #2 is empty"),
        (f"{A},,{B}", "AMQP URL #2 is empty"),
        ("", "the AMQP URL is empty"),
        (f"{A},http://herald:s3cret@mq2/", "AMQP URL #2 (http://herald:***@mq2/): scheme 'http'"),
        ("mq1.example:5672", "scheme"),
        (f"{A},amqp://herald:s3cret@/billing", "AMQP URL #2 (amqp://herald:***@/billing): no host"),
        (f"{A},amqp://herald:s3cret@mq2:99999/", "AMQP URL #2"),
        (f"{A},amqp://herald:s3cret@mq2:port/", "bad port"),
        (f"{A},amqp://herald:s3@cret@/", "AMQP URL #2 (amqp://herald:***@/): no host"),
        (f"{A}, {A}", "AMQP URL #2 (amqp://herald:***@mq1.example:5672/billing): the same node twice"),
        (",".join(f"amqp://h{i}/" for i in range(17)), "17 AMQP URLs; at most 16"),
    ],
)
def test_a_wrong_list_is_refused_naming_the_entry_and_never_its_password(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="AMQP URL") as raised:
        amqp_nodes.split_urls(value)
    assert message in str(raised.value)
    assert "s3cret" not in str(raised.value)
    with pytest.raises(ValidationError) as invalid:
        Settings(amqp_url=value)  # type: ignore[arg-type]
    assert message in str(invalid.value)
    assert "s3cret" not in str(invalid.value)


def test_the_cli_says_which_setting_is_wrong_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.settings import get_settings

    monkeypatch.setenv("HERALD_AMQP_URL", f"{A},ftp://herald:s3cret@mq2/")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["status"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "AMQP URL #2" in result.output
    assert "scheme 'ftp'" in result.output
    assert "s3cret" not in result.output


def test_classic_queues_on_several_nodes_are_refused_unless_allowed() -> None:
    with pytest.raises(ConfigurationError, match="HERALD_QUEUE_TYPE is 'classic'") as refused:
        check_cluster(_cluster(), store=False)
    assert "mq1.example:5672, mq2.example:5673" in str(refused.value)
    assert "s3cret" not in str(refused.value)
    with pytest.raises(ConfigurationError, match="HERALD_ALLOW_CLASSIC_QUEUES_ON_CLUSTER"):
        build_broker(_cluster())
    with pytest.raises(ConfigurationError, match="classic"):
        Publisher(_cluster())
    check_cluster(_cluster(allow_classic_queues_on_cluster=True), store=False)
    check_cluster(Settings(amqp_url=A), store=True)  # type: ignore[arg-type]  # one node: anything goes


def test_sqlite_with_several_nodes_is_refused_unless_allowed(tmp_path: Path) -> None:
    sqlite = f"sqlite:///{tmp_path / 'h.db'}"
    with pytest.raises(ConfigurationError, match="SQLite, which hosts cannot share") as refused:
        bootstrap(_cluster(queue_type="quorum", database_url=sqlite))
    assert "herald[postgres]" in str(refused.value)
    assert not (tmp_path / "h.db").exists()  # refused before anything was made
    check_cluster(
        _cluster(queue_type="quorum", database_url=sqlite, allow_sqlite_on_cluster=True), store=True
    )
    check_cluster(_cluster(queue_type="quorum", database_url="postgresql+psycopg://h/db"), store=True)


def test_the_worker_command_refuses_before_starting_dramatiq() -> None:
    result = CliRunner().invoke(app, ["worker", "route"], obj=_cluster())
    assert result.exit_code == 2
    assert "HERALD_QUEUE_TYPE is 'classic'" in result.output


def test_the_broker_of_a_cluster_is_given_every_node_in_order() -> None:
    broker = build_broker(_cluster(queue_type="quorum"))
    assert [(p.host, p.port) for p in broker.parameters] == [("mq1.example", 5672), ("mq2.example", 5673)]
    single = build_broker(Settings(amqp_url=A))  # type: ignore[arg-type]
    assert (single.parameters.host, single.parameters.port) == ("mq1.example", 5672)


def test_node_parameters_are_tried_once_each_with_the_timeout() -> None:
    params = amqp_nodes.parameters([A, B], timeout=3.0, heartbeat=0)
    assert [
        (p.host, p.connection_attempts, p.retry_delay, p.socket_timeout, p.heartbeat) for p in params
    ] == [
        ("mq1.example", 1, 0, 3.0, 0),
        ("mq2.example", 1, 0, 3.0, 0),
    ]


class _FlakyChannel:
    """A confirming channel whose node is lost after confirming ``confirm_first`` messages, each
    of the ``losses`` first publishes; the ones after it confirm everything."""

    def __init__(self, urls: list[str], losses: int, confirm_first: int = 1) -> None:
        self.urls = urls
        self.losses = losses
        self.confirm_first = confirm_first
        self.calls: list[list[str]] = []
        self.opened = 0
        self._open = False

    node = "mq.example:5672"

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self.opened += 1
        self._open = True

    def close(self) -> None:
        self._open = False

    def publish(
        self,
        _queue: str,
        messages: Sequence[tuple[str, bytes]],
        _window: int,
        on_confirmed: Callable[[int], None] | None = None,
        *,
        weights: Sequence[int] | None = None,
    ) -> None:
        self.calls.append([m for m, _ in messages])
        confirmed = [m for m, _ in messages][: self.confirm_first] if len(self.calls) <= self.losses else []
        if len(self.calls) <= self.losses:
            self._open = False
            if on_confirmed is not None and weights is not None:
                on_confirmed(sum(weights[: len(confirmed)]))
            raise BrokerUnavailable("connection to RabbitMQ was lost", confirmed=confirmed)
        if on_confirmed is not None and weights is not None:
            on_confirmed(sum(weights))


def _publisher(urls: list[str], losses: int) -> tuple[Publisher, _FlakyChannel]:
    publisher = Publisher(Settings(amqp_url=",".join(urls), queue_type="quorum", stage_batch_size=1))  # type: ignore[arg-type]
    channel = _FlakyChannel(urls, losses)
    publisher._channel = channel  # type: ignore[assignment]
    return publisher, channel


def test_what_a_lost_node_had_not_confirmed_is_published_again_on_the_next() -> None:
    publisher, channel = _publisher([A, B, C], losses=1)
    counted: list[int] = []
    events = [invoice_created(f"evt_{i}") for i in range(4)]
    assert publisher.publish_many(events, on_confirmed=counted.append) == 4
    assert channel.calls == [["evt_0", "evt_1", "evt_2", "evt_3"], ["evt_1", "evt_2", "evt_3"]]
    assert channel.opened == 2  # the second connection: the first node that answers
    assert sum(counted) == 4  # each event counted once, on whichever node confirmed it


def test_when_every_node_was_lost_the_error_names_exactly_what_any_node_confirmed() -> None:
    publisher, channel = _publisher([A, B], losses=5)
    with pytest.raises(BrokerUnavailable) as lost:
        publisher.publish_many([invoice_created(f"evt_{i}") for i in range(5)])
    assert len(channel.calls) == 3  # the first node, then once per node
    assert lost.value.confirmed == ["evt_0", "evt_1", "evt_2"]


def test_with_one_node_a_lost_connection_is_not_tried_again_here() -> None:
    publisher, channel = _publisher([A], losses=1)
    with pytest.raises(BrokerUnavailable) as lost:
        publisher.publish_many([invoice_created(f"evt_{i}") for i in range(3)])
    assert len(channel.calls) == 1
    assert lost.value.confirmed == ["evt_0"]


def test_a_nack_is_not_tried_on_another_node() -> None:
    publisher, channel = _publisher([A, B], losses=0)

    def nack(*_args: Any, **_kwargs: Any) -> None:
        channel.calls.append([])
        raise MessageNacked("refused", confirmed=[])

    channel.publish = nack  # type: ignore[method-assign]
    with pytest.raises(MessageNacked):
        publisher.publish_many([invoice_created("evt_0")])
    assert len(channel.calls) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "--nodes must be between 1 and 7, not 0"),
        (["--nodes", "8"], "--nodes must be between 1 and 7, not 8"),
        (
            ["--base-port", "70000"],
            "--base-port must leave each of the 3 nodes a port between 1024 and 45535",
        ),
        (["--base-port", "80"], "--base-port must leave"),
    ],
)
def test_the_local_cluster_command_refuses_wrong_flags_saying_which(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["broker", "cluster", "up", *args, "--data-dir", str(tmp_path)], obj=Settings()
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not any(tmp_path.iterdir())  # nothing started
