"""Shared fixtures: a real RabbitMQ, a per-run queue namespace, polling with a deadline.

RabbitMQ comes from ``HERALD_TEST_AMQP_URL`` when set; otherwise from
testcontainers when a Docker engine answers; otherwise from the local-node
script (``infra.rabbitmq_local``), which starts a node on 127.0.0.1.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
#: One queue namespace per test run, so runs never see each other's messages.
RUN_PREFIX = f"herald-test-{uuid.uuid4().hex[:8]}"

TEST_AMQP_URL = os.environ.get("HERALD_TEST_AMQP_URL", LOCAL_AMQP_URL)
# infra.broker reads the settings once, when a test module first imports it (even a unit test,
# at collection): the broker URL and queue namespace of this run must be in place before that.
os.environ["HERALD_AMQP_URL"] = TEST_AMQP_URL
os.environ["HERALD_QUEUE_PREFIX"] = RUN_PREFIX

T = TypeVar("T")


def wait_for(
    check: Callable[[], T], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)  # the poll interval; the deadline above bounds the wait
        last = check()
    return last


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ that answers, for the whole test session."""
    if "HERALD_TEST_AMQP_URL" in os.environ:
        yield TEST_AMQP_URL
        return
    if _docker_answers():
        import sys

        import pika
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13") as container:
            host = container.get_container_host_ip()
            url = f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}/%2F"
            os.environ["HERALD_AMQP_URL"] = url
            if "infra.broker" in sys.modules:  # built already, with the URL known before the container
                sys.modules["infra.broker"].broker.parameters = pika.URLParameters(url)
            yield url
        return
    from infra.rabbitmq_local import ensure_broker

    yield ensure_broker(LOCAL_AMQP_URL, REPO / ".herald" / "rabbitmq")


@pytest.fixture(scope="session")
def herald_env(amqp_url: str) -> dict[str, str]:
    """Environment shared by in-process tests and the processes the tests start."""
    return {
        "HERALD_AMQP_URL": amqp_url,
        "HERALD_QUEUE_PREFIX": RUN_PREFIX,
        "HERALD_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "HERALD_TWILIO_AUTH_TOKEN": "test-token",
        "HERALD_TWILIO_FROM": "+15005550006",
        "HERALD_MIN_BACKOFF_MS": "100",
        "HERALD_MAX_BACKOFF_MS": "2000",
        "HERALD_LOG_FORMAT": "json",
    }
