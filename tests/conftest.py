"""Shared fixtures: a real RabbitMQ, a per-run queue namespace, polling with a deadline.

RabbitMQ comes from ``HERALD_TEST_AMQP_URL`` when set; otherwise from
testcontainers when a Docker engine answers; otherwise from the local-node
script (``tooling.local.rabbitmq``), which starts a node on 127.0.0.1.

PostgreSQL, the same way: ``HERALD_TEST_DATABASE_URL`` (a role that may create
databases), else testcontainers, else a throwaway cluster from
``tooling.local.postgres``. Only tests that ask for it start one.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from infra.settings import Settings

REPO = Path(__file__).resolve().parent.parent
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
#: One queue namespace per test run, so runs never see each other's messages.
RUN_PREFIX = f"herald-test-{uuid.uuid4().hex[:8]}"

TEST_AMQP_URL = os.environ.get("HERALD_TEST_AMQP_URL", LOCAL_AMQP_URL)

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
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13") as container:
            host = container.get_container_host_ip()
            yield f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}/%2F"
        return
    from tooling.local.rabbitmq import ensure_broker

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
        # The Procfile's collect line will not start without it (no test event reaches GoCardless
        # through it unless the test points HERALD_GOCARDLESS_BASE_URL at the sandbox).
        "HERALD_GOCARDLESS_ACCESS_TOKEN": "sandbox_test_token",
        "HERALD_MIN_BACKOFF_MS": "100",
        "HERALD_MAX_BACKOFF_MS": "2000",
        # The per-sender rate limit is off except where a test measures it.
        "HERALD_SMS_SEGMENTS_PER_SECOND": "0",
        # Batches of 100 (the default is 200 on SQLite): the fault tests kill a stage while it
        # holds a batch, and a run of 200 events must take more than one.
        "HERALD_STAGE_BATCH_SIZE": "100",
        # Quiet hours are off (SMS any time of day) except where a test sets windows and a clock.
        "HERALD_DEFAULT_SEND_WINDOWS": "sms=any,email=any",
        "HERALD_LOG_FORMAT": "json",
    }


def settings_of(env: Mapping[str, str], **fields: Any) -> Settings:
    """Settings built explicitly from ``HERALD_*`` variables (``herald_env``'s) and fields: what
    the processes a test starts read from their environment, handed to in-process code."""
    named = {
        name.removeprefix("HERALD_").lower(): value
        for name, value in env.items()
        if name.startswith("HERALD_")
    }
    return Settings(**{**named, **fields})


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the whole session, as a URL whose role may create databases."""
    if os.environ.get("HERALD_TEST_DATABASE_URL"):
        yield os.environ["HERALD_TEST_DATABASE_URL"]
        return
    if _docker_answers():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="psycopg") as container:
            yield container.get_connection_url()
        return
    from tooling.local.postgres import LocalPostgres

    with LocalPostgres() as url:
        yield url


class PostgresSchemas:
    """Fresh, empty PostgreSQL "databases" for tests: one schema each, dropped after the test.

    A schema, not a database, because ``CREATE DATABASE`` costs about 0.3 s even from a template,
    while a schema is free and migrating it costs about 0.1 s. The URL puts the schema first on
    the ``search_path``, so herald, Alembic and any process given the URL see only that schema.
    """

    def __init__(self, server_url: str) -> None:
        from sqlalchemy.engine import make_url

        self._url = make_url(server_url)
        self._prefix = f"test_{uuid.uuid4().hex[:8]}_"

    def _admin(self, sql: str) -> None:
        import psycopg

        # psycopg takes the URL without SQLAlchemy's "+psycopg" driver suffix.
        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            # A connection a test leaked must not hang the run: fail the drop instead of waiting.
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(sql)  # names made here, never user input

    def create(self) -> str:
        """A new, empty schema; returns a URL that works in it (password included: never log it)."""
        schema = f"{self._prefix}{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE SCHEMA "{schema}"')
        query = {**self._url.query, "options": f"-csearch_path={schema}"}
        return self._url.set(query=query).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        """Drop a schema made by ``create`` and everything in it."""
        from sqlalchemy.engine import make_url

        options = str(make_url(url).query["options"])
        self._admin(f'DROP SCHEMA IF EXISTS "{options.split("=", 1)[1]}" CASCADE')

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """``create`` for the length of a ``with`` block, then ``drop``."""
        url = self.create()
        try:
            yield url
        finally:
            self.drop(url)


@pytest.fixture(scope="session")
def postgres_schemas(postgres_url: str) -> PostgresSchemas:
    """Makes a fresh PostgreSQL schema per test on the session's server."""
    return PostgresSchemas(postgres_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each store (test ids read ``test_x[sqlite]``, ``test_x[postgresql]``).

    Nothing is migrated yet: herald migrates on boot, as it does in production.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'herald.db'}"
        return
    schemas: Any = request.getfixturevalue("postgres_schemas")  # PostgreSQL starts only when asked for
    with schemas.fresh() as url:
        yield url
