"""The fuzzing layer's world: the api served by uvicorn on 127.0.0.1, on a real store and the real
broker, with two organisations (acme and other), a key of each level, and the GoCardless sandbox.

One world per store (SQLite, PostgreSQL) for the whole of ``tests/fuzz``: booting, migrating and
seeding once keeps the layer inside its time budget. Each hypothesis example cleans up after
itself (the events queue is drained), so examples never see each other's effects.

Determinism: every property runs with ``derandomize=True`` and no example database (``FUZZ``),
so a run is the same run on every machine and in CI, and a failure found once is found again.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pika
import pytest
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from sqlalchemy import select

from infra import topology
from infra.bootstrap import Services, bootstrap, shutdown
from infra.settings import Settings, get_settings
from infra.store.api_keys import create_key
from infra.store.directory import upsert_customer
from infra.store.notifications import NewNotification, record_event, record_notifications
from infra.store.tables import gc_payments, metadata
from producers.api.app import create_app
from producers.publisher import Publisher
from schemas.access import Level
from schemas.directory import CustomerRecord
from schemas.events import event_adapter
from schemas.validation import event_to_json
from tests.conftest import RUN_PREFIX, wait_for
from tests.factories import customer, invoice_created
from tooling.local.ports import free_port
from tooling.sandboxes.gocardless import GoCardlessConfig, GoCardlessSandbox

#: The hypothesis settings of every property here: bounded, reproducible, no example database
#: (a database would make a run depend on the runs before it), no deadline (a request may wait
#: on the broker), and fixtures shared by the examples of a test on purpose.
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # No explain phase: on a failure it re-runs the test a hundred times to say which lines ran.
    phases=(Phase.explicit, Phase.generate, Phase.target, Phase.shrink),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

ACME, OTHER = "acme", "other"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "fuzz-twilio-token"
GC_TOKEN = "fuzz_gc_token"
VONAGE_KEY = "fuzzkey1"
VONAGE_SIGNING = "fuzz-vonage-signature-secret"
GC_SECRET = "fuzz-gc-webhook-secret"
LINK_SECRET = "fuzz-link-secret"
#: Which key a request carries: each level of acme, other's admin, an unknown key, none, junk.
KEY_KINDS = ("view", "send", "edit", "admin", "other_admin", "unknown", "missing", "malformed")


@dataclass
class World:
    """The running api and what the properties need to drive and judge it."""

    url: str
    settings: Settings
    services: Services
    keys: dict[str, str]
    #: Seeded ids of other (the organisation nobody here has a key of, but ``other_admin``).
    other_notification: str
    other_payment: str
    gocardless: GoCardlessSandbox
    client: httpx.Client = field(repr=False)

    @property
    def events_queue(self) -> str:
        """The queue ``POST /events`` and ``herald publish`` publish to (this world's only)."""
        return topology.queue_name(self.settings.queue_prefix, "route")

    def headers(self, kind: str) -> dict[str, str]:
        """The ``Authorization`` header of a key kind (see ``KEY_KINDS``)."""
        if kind == "missing":
            return {}
        if kind == "malformed":
            return {"Authorization": "Basic YWNtZTpwYXNzd29yZA=="}
        if kind == "unknown":
            return {"Authorization": "Bearer hk_" + "x" * 43}
        return {"Authorization": f"Bearer {self.keys[kind]}"}

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        """One request to the live api, with the key of kind ``key``."""
        headers = {**self.headers(key), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)

    def drain_events(self) -> list[dict[str, Any]]:
        """Every event published since the last drain (the events queue is left empty)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.settings.amqp_url.get_secret_value()))
        try:
            channel = connection.channel()
            out: list[dict[str, Any]] = []
            while True:
                method, _props, body = channel.basic_get(self.events_queue, auto_ack=True)
                if method is None:
                    return out
                message = json.loads(body)
                argument = message["args"][0]
                # A run of events travels as one batch message (issue 15): its events, in order.
                out.extend(argument["events"] if message["actor_name"] == "route_events" else [argument])
        finally:
            connection.close()

    def leaks(self, text: str) -> list[str]:
        """Which of the other organisation's own values ``text`` shows."""
        return [v for v in (OTHER_MOBILE, OTHER_EMAIL, self.other_notification) if v in text]

    def tenant_rows(self, org_id: str) -> dict[str, list[tuple[str, ...]]]:
        """Every stored row of ``org_id`` in every table that has an ``org_id``, to compare."""
        snapshot: dict[str, list[tuple[str, ...]]] = {}
        with self.services.reading() as conn:
            for table in metadata.sorted_tables:
                if "org_id" not in table.c:
                    continue
                rows = conn.execute(select(table).where(table.c.org_id == org_id)).all()
                snapshot[table.name] = sorted(tuple(map(repr, row)) for row in rows)
        return snapshot


def error_shape_problem(content: bytes) -> str | None:
    """Why a 4xx answer's body is not ``{"error": {"code": str, "message": str, "details": list}}``,
    or None when it is."""
    try:
        body = json.loads(content)
    except ValueError:
        return f"not JSON: {content[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"no 'error' object: {body!r:.300}"
    wrong = [
        name
        for name, kind in (("code", str), ("message", str), ("details", list))
        if not isinstance(error.get(name), kind)
    ]
    if wrong:
        return f"'error' lacks a {'/'.join(wrong)} of the right type: {body!r:.300}"
    return None


def assert_answered_well(response: httpx.Response) -> None:
    """No 5xx, and every 4xx in the one error shape."""
    assert response.status_code < 500, (
        f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
        f"{response.text[:500]}"
    )
    if 400 <= response.status_code < 500 and response.request.method != "HEAD":  # HEAD: no body
        problem = error_shape_problem(response.content)
        assert problem is None, (
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code} outside the one error shape: {problem}"
        )


#: What only the other organisation's data holds: seen in an answer to acme, it leaked.
OTHER_MOBILE = "+358409999999"
OTHER_EMAIL = "q9-other-secret@example.fi"


def _seed(services: Services, org: str, customer_id: str, contact_id: str, invoice: str) -> str:
    """A customer with a primary contact, a routed invoice event and its SMS notification; the
    notification's id."""
    record = {**customer(customer_id), "org_id": org}
    mobile, email = (OTHER_MOBILE, OTHER_EMAIL) if org == OTHER else ("+358401234567", "p1@example.fi")
    record["contacts"] = [
        {
            "contact_id": contact_id,
            "primary": True,
            "name": "Aino",
            "mobile": mobile,
            "locale": "fi",
            "emails": [{"address": email}],
        }
    ]
    raw = {**invoice_created(f"evt_{invoice}", id=invoice, customer_id=customer_id), "org_id": org}
    event = event_adapter.validate_python(raw)
    sms = NewNotification(contact_id, "invoice", "sms", mobile, "fi", "primary", sends=True)
    with services.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
        record_event(conn, event, event_to_json(event), "routed")
        (nid,) = record_notifications(conn, event, [sms])
    return nid


def _purge(url: str, queues: list[str]) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in queues:
            try:
                channel.queue_delete(name)
            except pika.exceptions.ChannelClosedByBroker:
                channel = connection.channel()
    finally:
        connection.close()


STORES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "stores(*names): run a fuzz test on these stores only (default: sqlite and postgresql)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that needs the world runs on every store, or on those its ``stores`` mark names
    (a property no store takes part in runs once: the time budget is for finding things)."""
    if "world" in metafunc.fixturenames:
        mark = metafunc.definition.get_closest_marker("stores")
        stores = list(mark.args) if mark is not None else list(STORES)
        metafunc.parametrize("world", stores, indirect=True, scope="package")


@pytest.fixture(scope="package")
def world(
    request: pytest.FixtureRequest, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The api on a fresh store of each kind, seeded, served on a free port of 127.0.0.1."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'herald.db'}"
        schemas = None
    else:
        schemas = request.getfixturevalue("postgres_schemas")
        database_url = schemas.create()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    prefix = f"{RUN_PREFIX}-fuzz-{uuid.uuid4().hex[:6]}"
    with GoCardlessSandbox(GoCardlessConfig(GC_TOKEN, GC_SECRET)) as sandbox:
        world_settings = Settings(
            database_url=database_url,
            amqp_url=amqp_url,
            queue_prefix=prefix,
            public_url=url,
            twilio_account_sid=TWILIO_SID,
            twilio_auth_token=TWILIO_TOKEN,
            twilio_from="+15005550006",
            vonage_api_key=VONAGE_KEY,
            vonage_signature_secret=VONAGE_SIGNING,
            gocardless_access_token=GC_TOKEN,
            gocardless_base_url=sandbox.url,
            gocardless_webhook_secret=GC_SECRET,
            link_secret=LINK_SECRET,
            # The limits the strategies are built around (huge strings pass 64 KiB, nesting
            # passes 32 levels, a batch stays under the body limit), pinned against the defaults.
            max_event_bytes=64 * 1024,
            max_json_depth=32,
            max_batch_events=1000,
            api_max_body_bytes=4 * 1024 * 1024,
            api_docs_exposure="public",
            api_metrics_exposure="public",
            # The fuzzers send thousands of bad keys from one address on purpose: the throttle of
            # failed authentication (tested on its own elsewhere) must not turn them all into 429.
            api_auth_failures_per_minute=1_000_000,
            log_level="ERROR",
        )
        services = bootstrap(world_settings)
        other_notification = _seed(services, OTHER, "C9", "Q9", "INV-9")
        _seed(services, ACME, "C1", "P1", "INV-1")
        with services.transaction() as conn:
            keys = {level.value: create_key(conn, ACME, level, f"fuzz {level}")[1] for level in Level}
            keys["other_admin"] = create_key(conn, OTHER, Level.ADMIN, "fuzz other")[1]
            conn.execute(
                gc_payments.insert().values(
                    gc_id="PM0OTHER",
                    org_id=OTHER,
                    invoice_id="INV-9",
                    customer_id="C9",
                    amount_minor=100,
                    currency="EUR",
                    status="pending_submission",
                    synced_at=datetime.now(UTC),
                )
            )
        with Publisher(world_settings) as publisher:  # declares the events queue the drain reads
            publisher.connect()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(world_settings, services), host="127.0.0.1", port=port, log_level="critical"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_for(lambda: server.started, timeout=15, what="the fuzzed api on uvicorn")
        with httpx.Client(base_url=url, timeout=30) as client:
            yield World(
                url=url,
                settings=world_settings,
                services=services,
                keys=keys,
                other_notification=other_notification,
                other_payment="PM0OTHER",
                gocardless=sandbox,
                client=client,
            )
        server.should_exit = True
        thread.join(15)
    shutdown(services)
    route = topology.queue_name(prefix, "route")
    _purge(amqp_url, [route, topology.delay_queue(route), topology.dead_letter_queue(route)])
    if schemas is not None:
        schemas.drop(database_url)


@pytest.fixture
def live(world: World) -> Iterator[World]:
    """The world, with nothing left in the events queue before and after the test."""
    world.drain_events()
    yield world
    world.drain_events()


@pytest.fixture
def cli_env(live: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """This process's settings (what the CLI reads) pointing at the world's store and queues."""
    for name, value in {
        "HERALD_DATABASE_URL": live.settings.database_url.get_secret_value(),
        "HERALD_AMQP_URL": live.settings.amqp_url.get_secret_value(),
        "HERALD_QUEUE_PREFIX": live.settings.queue_prefix,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield live
    monkeypatch.undo()
    get_settings.cache_clear()
