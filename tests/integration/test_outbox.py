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
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        ids = []
        while True:
            method, _props, body = channel.basic_get(f"{prefix}.route", auto_ack=True)
            if method is None:
                break
            ids.append(json.loads(body)["args"][0]["event_id"])
        for name in (f"{prefix}.route", f"{prefix}.route.DQ", f"{prefix}.route.XQ"):
            channel.queue_delete(name)
    finally:
        connection.close()
    assert ids == [f"evt_{i}" for i in range(5)]
