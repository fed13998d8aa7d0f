"""The outbox: events join the upstream's transaction; the relay publishes in order, confirmed."""

from __future__ import annotations

import json
import uuid

import pika
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from infra.errors import InvalidEvent
from infra.settings import Settings
from producers.outbox import add_event, create_outbox_table, outbox, relay
from producers.publisher import Publisher
from tests.factories import invoice_created
from tests.integration.conftest import drain


def test_an_invalid_event_fails_the_upstreams_own_transaction(database_url: str) -> None:
    engine = create_engine(database_url)
    create_outbox_table(engine)
    bad = invoice_created()
    del bad["data"]["invoice"]["url"]

    def one_transaction() -> None:
        with Session(engine) as session, session.begin():
            add_event(session, invoice_created("evt_ok"))
            add_event(session, bad)

    with pytest.raises(InvalidEvent, match=r"data.invoice.url: Field required"):
        one_transaction()
    with engine.connect() as conn:
        assert conn.execute(select(outbox)).all() == []  # rolled back together


def test_a_rolled_back_transaction_publishes_nothing_and_the_relay_keeps_order(
    amqp_url: str, database_url: str
) -> None:
    database = database_url
    engine = create_engine(database)
    create_outbox_table(engine)
    with Session(engine) as session, session.begin():
        for i in range(5):
            add_event(session, invoice_created(f"evt_{i}"))
    with Session(engine) as session:
        session.begin()
        add_event(session, invoice_created("evt_rolled_back"))
        session.rollback()
    prefix = f"outbox-{uuid.uuid4().hex[:6]}"
    settings = Settings(amqp_url=amqp_url, queue_prefix=prefix)  # type: ignore[arg-type]
    with Publisher(settings) as publisher:
        assert relay(database, publisher, once=True) == 5
        assert relay(database, publisher, once=True) == 0  # everything is marked sent
    ids = _route_ids(amqp_url, prefix)
    assert ids == [f"evt_{i}" for i in range(5)]


def _route_ids(amqp_url: str, prefix: str) -> list[str]:
    ids = []
    for _, body in drain(amqp_url, f"{prefix}.route"):
        message = json.loads(body)
        argument = message["args"][0]
        # A run of events travels as one batch message (issue 15): its events, in order.
        events = argument["events"] if message["actor_name"] == "route_events" else [argument]
        ids.extend(event["event_id"] for event in events)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for name in (f"{prefix}.route", f"{prefix}.route.DQ", f"{prefix}.route.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()
    return ids


def test_a_row_the_contract_refuses_is_set_aside_with_its_reason_and_the_rest_still_go(
    amqp_url: str, database_url: str
) -> None:
    """A row stored before a stricter rule (here an exponent amount, and one nested too deep)
    never stops the relay: it is marked rejected with the reason, the others are published."""
    engine = create_engine(database_url)
    create_outbox_table(engine)
    old = invoice_created("evt_old")
    old["data"]["invoice"]["total"] = "1E+3"
    deep: dict[str, object] = {}
    node = deep
    for _ in range(60):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    nested = invoice_created("evt_deep")
    nested["data"]["invoice"]["extra"] = deep
    from datetime import UTC, datetime

    with engine.begin() as conn:
        for event in (invoice_created("evt_a"), old, nested, invoice_created("evt_b")):
            conn.execute(
                outbox.insert().values(
                    event_id=event["event_id"], payload=event, created_at=datetime.now(UTC)
                )
            )
    prefix = f"outbox-{uuid.uuid4().hex[:6]}"
    settings = Settings(amqp_url=amqp_url, queue_prefix=prefix)  # type: ignore[arg-type]
    with Publisher(settings) as publisher:
        assert relay(database_url, publisher, once=True) == 2
        assert relay(database_url, publisher, once=True) == 0
    assert _route_ids(amqp_url, prefix) == ["evt_a", "evt_b"]
    with engine.connect() as conn:
        rows = {r.event_id: r for r in conn.execute(select(outbox)).all()}
    assert rows["evt_old"].sent_at is None
    assert "data.invoice.total" in rows["evt_old"].rejected
    assert "nested deeper than" in rows["evt_deep"].rejected
    assert rows["evt_a"].rejected is None
    assert rows["evt_a"].sent_at is not None


def test_an_outbox_table_of_an_older_herald_gains_the_rejected_column(tmp_path: object) -> None:
    from sqlalchemy import inspect, text

    engine = create_engine(f"sqlite:///{tmp_path}/old.db")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE herald_outbox (id INTEGER PRIMARY KEY, event_id VARCHAR(200) NOT NULL,"
                " payload JSON NOT NULL, created_at DATETIME NOT NULL, sent_at DATETIME)"
            )
        )
    create_outbox_table(engine)
    create_outbox_table(engine)  # idempotent
    assert "rejected" in {c["name"] for c in inspect(engine).get_columns("herald_outbox")}
