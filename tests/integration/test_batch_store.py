"""The batch store functions (issue 15) on SQLite and PostgreSQL.

Each is checked against the single-item function it mirrors, item by item: on the same stored
state (rolled back between runs), the batch gives each item what the function before issue 15
gave it (``tests/integration/reference_store.py``, the oracle), and so does today's single-item
function, and the three leave the same rows behind. Then: the same batch twice changes nothing
the second time; a batch mixing every state gets each item's outcome; two batches racing keep
every guarantee; and 100 items take a handful of statements.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, event, select, update
from sqlalchemy.engine import Connection

from infra.bootstrap import Services
from infra.errors import MalformedMessage
from infra.store.attempts import (
    Attempt,
    Outcome,
    count_attempts,
    count_attempts_many,
    first_attempt_at,
    first_attempts_at,
    log_attempt,
    log_attempts,
)
from infra.store.directory import load_customer, load_customers, upsert_customer
from infra.store.lookups import channel_of, channels_of
from infra.store.notifications import (
    EventRecord,
    NewNotification,
    RecordedEvent,
    StatusChange,
    apply_status,
    apply_statuses,
    claim_for_sending,
    claim_for_sending_many,
    load_event_payload,
    load_event_payloads,
    load_notification,
    load_notifications,
    record_event,
    record_events,
    record_notifications,
    record_notifications_many,
    record_provider_id,
    record_provider_ids,
    record_refusal,
    record_refusals,
    release_claim,
    release_claims,
    skip_pending,
    skip_pending_many,
    store_rendered,
    store_rendered_email,
    store_rendered_emails_many,
    store_rendered_many,
)
from infra.store.organisations import (
    invoice_paid,
    invoices_paid,
    load_org,
    load_orgs,
    refund_credit,
    refund_credit_many,
    reserve_credit,
    reserve_credit_many,
    update_org,
)
from infra.store.rate_limit import take_slot, take_slots
from infra.store.reminders import track_invoice, track_invoices
from infra.store.rendering import load_to_render
from infra.store.tables import (
    delivery_attempts,
    events,
    invoices,
    notifications,
    org_warnings,
    organisations,
    send_rate,
    status_changes,
)
from infra.store.templates import (
    greeting_names,
    greeting_names_many,
    load_overrides,
    load_overrides_many,
    save_override,
)
from schemas.directory import CustomerRecord
from schemas.events import Event
from schemas.notifications import Status
from schemas.validation import event_to_json, parse_event
from tests.factories import customer, invoice_created, payment_received, reminder_due
from tests.integration import reference_store as ref
from tests.integration.conftest import race, while_row_locked

T = TypeVar("T")

#: Today's single-item functions (which now call the batch ones with a list of one), in the shape
#: of ``reference_store``.
TODAY = SimpleNamespace(
    record_event=record_event,
    record_notifications=record_notifications,
    track_invoice=track_invoice,
    log_attempt=log_attempt,
    apply_status=apply_status,
)

#: Hypothesis examples per property (each runs three times on each store); more with the variable.
EXAMPLES = int(os.environ.get("HERALD_BATCH_EXAMPLES", "15"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, database=None)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
UNKNOWN = "ntf_00000000dead"

#: One notification per state each organisation's world event holds (contacts P0, P1, …).
STATES: list[dict[str, Any]] = [
    {"status": "pending"},
    {"status": "pending", "body": "Hei", "segments": 2},
    {"status": "pending", "segments": 0},
    {"status": "sending", "attempts": 1},
    {"status": "sending", "attempts": 1, "provider_id": "SM-s", "segments": 3},
    {"status": "sent", "provider_id": "SM-t", "body": "x"},
    {"status": "delivered", "provider_id": "SM-d", "segments": 1},
    {"status": "failed", "error_code": 30007},
    {"status": "skipped"},
    {"status": "undelivered", "provider_id": "SM-u"},
]
#: acme buys credit and is warned under 8; beta buys a little; gamma was never configured.
ORGS = ("acme", "beta", "gamma")


@dataclass(frozen=True)
class World:
    ids: list[str]  # every world notification, STATES order within each organisation
    org_of: dict[str, str]
    state_of: dict[str, int]  # index into STATES
    email_ids: list[str]

    def of(self, org: str) -> list[str]:
        return [nid for nid in self.ids if self.org_of[nid] == org]


def _event(org: str, event_id: str = "evt_1", **invoice: Any) -> Event:
    return parse_event({**invoice_created(event_id, **invoice), "org_id": org})


def _sms(contact: str, *, sends: bool = True, kind: str = "invoice") -> NewNotification:
    return NewNotification(contact, kind, "sms", f"+35840100{contact[1:]:0>4}", "fi", "send", sends)


def _email(contact: str, *, sends: bool = True, kind: str = "invoice") -> NewNotification:
    return NewNotification(contact, kind, "email", f"{contact.lower()}@example.fi", "fi", "send", sends)


def build_world(store: Services) -> World:
    """Three organisations' events, each with a notification in every state, their directory,
    templates, attempts and a sender's timeline; committed."""
    ids: list[str] = []
    org_of: dict[str, str] = {}
    state_of: dict[str, int] = {}
    email_ids: list[str] = []
    with store.transaction() as conn:
        update_org(conn, "acme", {"buys_credit": True, "credit_balance": 12, "low_balance_threshold": 8})
        update_org(conn, "beta", {"buys_credit": True, "credit_balance": 3, "name": "Beta Oy"})
        update_org(conn, "acme", {"name": "Acme Oy", "default_locale": "fi"})
        for org in ORGS:
            contacts = [
                {"contact_id": "P0", "primary": True, "name": "Aino", "mobile": "+358 40 1234567"},
                {"contact_id": "P1", "name": "Eino", "emails": [{"address": "eino@example.fi"}]},
            ]
            line = {**customer("C1", contacts=contacts), "org_id": org}
            upsert_customer(conn, CustomerRecord.model_validate(line), region="FI")
        eino = {"contact_id": "P1", "primary": True, "emails": [{"address": "eino@example.fi"}]}
        shared = {**customer("C2", contacts=[eino]), "org_id": "acme"}
        upsert_customer(conn, CustomerRecord.model_validate(shared), region="FI")
        save_override(conn, "acme", ("invoice", "sms", "fi", "body"), "Lasku {{ invoice.number }}")
        save_override(conn, "acme", ("invoice", "email", "fi", "subject"), "Lasku")
        for org in ORGS:
            event = _event(org)
            record_event(conn, event, event_to_json(event), "routed")
            made = load_notifications(
                conn, record_notifications(conn, event, [_sms(f"P{n}") for n in range(len(STATES))])
            )
            for n, nid in enumerate(sorted(made, key=lambda nid: made[nid].contact_id)):
                conn.execute(update(notifications).where(notifications.c.id == nid).values(**STATES[n]))
                ids.append(nid)
                org_of[nid], state_of[nid] = org, n
            email_ids += record_notifications(conn, event, [_email("P0"), _email("P1")])
            track_invoice(conn, event)
        for nid in ids[3:6]:
            log_attempt(conn, nid, Outcome.RETRY, http_status=500, at=T0)
        conn.execute(send_rate.insert().values(sender="+1000", next_free_at=1002.0))
    return World(ids, org_of, state_of, email_ids)


@pytest.fixture
def world(store: Services) -> World:
    return build_world(store)


# --- comparing runs on the same state ---------------------------------------------------------------

#: Row columns that hold "when it happened": compared as "now" (recent) or as their value.
TIME_COLUMNS = {
    "updated_at",
    "received_at",
    "recorded_at",
    "attempted_at",
    "created_at",
    "at",
    "swept_at",
    "paid_at",
}
#: Tables whose ``id`` is a sequence number (not rolled back on PostgreSQL): compared without it.
SEQUENCED = {"status_changes", "delivery_attempts", "org_warnings"}
TABLES: tuple[Table, ...] = (
    events,
    notifications,
    status_changes,
    invoices,
    organisations,
    org_warnings,
    delivery_attempts,
    send_rate,
)


def _when(value: Any, exact: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not exact and abs(datetime.now(UTC) - value) < timedelta(hours=1):
        return "now"
    return value.isoformat()


def snapshot(conn: Connection, *, exact: bool = False, ignore: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every row of the tables the batch functions write, comparable across runs (sorted; a time
    of the run itself shows as "now" unless ``exact``; ``ignore``: ``table.column`` left out)."""
    out: dict[str, list[str]] = {}
    for table in TABLES:
        rows = []
        for r in conn.execute(select(table)).mappings():
            row = {k: v for k, v in r.items() if not (k == "id" and table.name in SEQUENCED)}
            row = {k: v for k, v in row.items() if f"{table.name}.{k}" not in ignore}
            for k in TIME_COLUMNS & row.keys():
                row[k] = _when(row[k], exact)
            rows.append(repr(sorted(row.items())))
        out[table.name] = sorted(rows)
    return out


def run(store: Services, work: Callable[[Connection], T]) -> tuple[T, dict[str, list[str]]]:
    """``work``'s result and the rows it leaves, in a transaction rolled back afterwards."""
    with store.engine.connect() as conn:
        tx = conn.begin()
        try:
            return work(conn), snapshot(conn)
        finally:
            tx.rollback()


def same_as_one_by_one(
    store: Services,
    reference: Callable[[Connection], list[Any]],
    single: Callable[[Connection], list[Any]],
    batch: Callable[[Connection], T],
) -> tuple[list[Any], T]:
    """Run the oracle, today's single-item function and the batch one on the same state: the
    same rows afterwards, and the oracle's and the single function's results equal. Returns the
    oracle's results and the batch's, for the caller to compare in the batch's shape."""
    expected, rows = run(store, reference)
    got_single, rows_single = run(store, single)
    got, rows_batch = run(store, batch)
    assert got_single == expected
    assert rows_single == rows
    assert rows_batch == rows
    return expected, got


def each_as_one_by_one(
    store: Services,
    reference: Callable[..., Any],
    single: Callable[..., Any],
    batch: Callable[[Connection, list[Any]], T],
    items: list[Any],
) -> tuple[list[Any], T]:
    """``same_as_one_by_one`` where the batch function takes ``items`` and the single ones take one
    item's fields as their arguments, item by item."""
    return same_as_one_by_one(
        store,
        lambda c: [reference(c, *item) for item in items],
        lambda c: [single(c, *item) for item in items],
        lambda c: batch(c, items),
    )


@contextmanager
def counting(conn: Connection) -> Iterator[list[str]]:
    """The SQL statements the connection sends meanwhile (an executemany counts once)."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(conn, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(conn, "before_cursor_execute", count)


def _ids(world: World, *, unknown: bool = True) -> st.SearchStrategy[list[str]]:
    pool = world.ids + world.email_ids + ([UNKNOWN] if unknown else [])
    return st.lists(st.sampled_from(pool), max_size=12)


# --- route ------------------------------------------------------------------------------------------


def _payment(event_id: str, invoice_id: str, amount: str) -> dict[str, Any]:
    body = payment_received(event_id)
    body["data"]["payment"].update(invoice_id=invoice_id, amount=amount, id=f"PAY-{event_id}")
    return body


def _reminder(event_id: str, invoice_id: str, balance: str) -> dict[str, Any]:
    body = reminder_due(event_id)
    body["data"]["invoice"].update(id=invoice_id, balance=balance)
    return body


#: Events route may meet in one batch: new invoices, re-publishes (same id or same invoice with
#: other figures), payments that do or do not cover, reminders, and the world's own evt_1.
ROUTED = [
    invoice_created("evt_i9", id="INV-9", total="100.00", balance="100.00"),
    invoice_created("evt_i9", id="INV-9", total="10.00", balance="10.00"),
    invoice_created("evt_i9b", id="INV-9", total="150.00", balance="150.00"),
    invoice_created("evt_i9z", id="INV-9", total="0.00", balance="0.00"),
    invoice_created("evt_i8", id="INV-8", total="20.00", balance="20.00"),
    _payment("evt_p9a", "INV-9", "60.00"),
    _payment("evt_p9b", "INV-9", "40.00"),
    _payment("evt_p8", "INV-8", "20.00"),
    _payment("evt_p1", "INV-1", "1234.50"),
    _reminder("evt_r9", "INV-9", "100.00"),
    _reminder("evt_r1", "INV-1", "1234.50"),
    invoice_created("evt_1"),
]


def _record(body: dict[str, Any]) -> EventRecord:
    event = parse_event(copy.deepcopy(body))
    kind = {"invoice.created": "invoice", "payment.received": "payment_thank_you"}.get(
        event.type, "payment_reminder"
    )
    decisions = [_sms("P0", kind=kind), _email("P1", kind=kind), _sms("P2", sends=False, kind=kind)]
    return EventRecord(event, event_to_json(event), "routed", decisions)


def _route_one_by_one(module: Any) -> Callable[[Connection, list[EventRecord]], list[RecordedEvent]]:
    def route(conn: Connection, records: list[EventRecord]) -> list[RecordedEvent]:
        out = []
        for r in records:
            new = module.record_event(conn, r.event, r.payload, r.outcome)
            pending = module.record_notifications(conn, r.event, list(r.notifications) if new else [])
            module.track_invoice(conn, r.event)
            out.append(RecordedEvent(new, sorted(pending)))
        return out

    return route


def test_recording_events_in_a_batch_is_recording_them_one_by_one(store: Services, world: World) -> None:
    @PROPERTY
    @given(st.lists(st.sampled_from(range(len(ROUTED))), max_size=10))
    def check(picks: list[int]) -> None:
        records = [_record(ROUTED[i]) for i in picks]
        expected, got = same_as_one_by_one(
            store,
            lambda c: _route_one_by_one(ref)(c, records),
            lambda c: _route_one_by_one(TODAY)(c, records),
            lambda c: record_events(c, records),
        )
        assert got == expected

    check()


def test_a_payment_before_a_reminder_of_its_invoice_in_one_batch_pays_it_first(
    store: Services, world: World
) -> None:
    records = [_record(ROUTED[0]), _record(ROUTED[5]), _record(ROUTED[6]), _record(ROUTED[9])]
    with store.transaction() as conn:
        recorded = record_events(conn, records)
        paid = invoices_paid(conn, [("acme", "INV-9", Decimal("100.00"))])
        row = conn.execute(select(invoices.c.paid_at).where(invoices.c.invoice_id == "INV-9")).one()
    assert [r.new for r in recorded] == [True] * 4
    assert paid == [True]
    assert row.paid_at is not None
    with store.transaction() as conn:
        again = record_events(conn, records)
    assert [r.new for r in again] == [False] * 4
    assert [r.pending for r in again] == [r.pending for r in recorded]  # still pending: re-driven


def test_record_notifications_many_is_record_notifications_for_each_event(
    store: Services, world: World
) -> None:
    one, two = _event("acme", "evt_n1"), _event("beta", "evt_n2")
    with store.transaction() as conn:
        for e in (one, two):
            record_event(conn, e, event_to_json(e), "routed")
    batch = [(one, [_sms("P0"), _sms("P1", sends=False)]), (two, [_email("P0")]), (one, [_sms("P0")])]
    expected, got = same_as_one_by_one(
        store,
        lambda c: [sorted(ref.record_notifications(c, e, list(items))) for e, items in batch],
        lambda c: [record_notifications(c, e, items) for e, items in batch],
        lambda c: record_notifications_many(c, batch),
    )
    assert got == expected
    assert len(got[0]) == 1
    assert got[0] == got[2]


def test_track_invoices_is_track_invoice_for_each_event(store: Services, world: World) -> None:
    @PROPERTY
    @given(st.lists(st.sampled_from(range(len(ROUTED))), max_size=10))
    def check(picks: list[int]) -> None:
        evts = [parse_event(copy.deepcopy(ROUTED[i])) for i in picks]

        def stored_then(track: Callable[[Connection], list[Any]]) -> Callable[[Connection], list[Any]]:
            def work(conn: Connection) -> list[Any]:
                for e in evts:  # the payments route recorded before tracking
                    record_event(conn, e, event_to_json(e), "routed")
                return track(conn)

            return work

        same_as_one_by_one(
            store,
            stored_then(lambda c: [ref.track_invoice(c, e) for e in evts]),
            stored_then(lambda c: [track_invoice(c, e) for e in evts]),
            stored_then(lambda c: [track_invoices(c, evts)]),
        )

    check()


def test_loading_orgs_customers_and_payments_for_a_batch_reads_what_one_by_one_reads(
    store: Services, world: World
) -> None:
    org_ids = ["acme", "gamma", "beta", "acme", "nobody"]
    keys = [("acme", "C1"), ("acme", "C2"), ("beta", "C1"), ("acme", "C9"), ("nobody", "C1"), ("acme", "C1")]
    owed = [
        ("acme", "INV-1", Decimal("1234.50")),
        ("acme", "INV-1", Decimal("0")),
        ("acme", "INV-1", Decimal("-1")),
        ("beta", "INV-9", Decimal("5")),
    ]
    with store.transaction() as conn:
        e = parse_event(_payment("evt_px", "INV-1", "1000.00"))
        record_event(conn, e, event_to_json(e), "routed")
    with store.reading() as conn:
        orgs = load_orgs(conn, org_ids, "SE")
        assert list(orgs) == ["acme", "gamma", "beta", "nobody"]
        for org_id in org_ids:
            assert orgs[org_id] == ref.load_org(conn, org_id, "SE") == load_org(conn, org_id, "SE")
        customers = load_customers(conn, keys)
        for key in keys:
            assert customers.get(key) == ref.load_customer(conn, *key) == load_customer(conn, *key)
        assert set(customers) == {("acme", "C1"), ("acme", "C2"), ("beta", "C1")}
        assert customers["acme", "C1"].contacts[1].emails  # the emails came along
        assert (
            invoices_paid(conn, owed)
            == [ref.invoice_paid(conn, *o) for o in owed]
            == [False, True, True, False]
        )
        assert [invoice_paid(conn, *o) for o in owed] == [False, True, True, False]


# --- render -----------------------------------------------------------------------------------------


def test_render_reads_for_a_batch_are_the_reads_one_by_one(store: Services, world: World) -> None:
    ids = [*world.ids, UNKNOWN, world.ids[0], *world.email_ids]
    event_keys = [("acme", "evt_1"), ("beta", "evt_1"), ("acme", "evt_x"), ("acme", "evt_1")]
    name_keys = [("acme", "C1", "P0"), ("acme", "C2", "P1"), ("beta", "C1", "P1"), ("gamma", "C9", "P9")]
    with store.reading() as conn:
        rows = load_notifications(conn, ids)
        assert set(rows) == set(world.ids) | set(world.email_ids)
        for nid in ids:
            assert rows.get(nid) == ref.load_notification(conn, nid) == load_notification(conn, nid)
        payloads = load_event_payloads(conn, event_keys)
        for key in event_keys:
            assert payloads.get(key) == ref.load_event_payload(conn, *key) == load_event_payload(conn, *key)
        names = greeting_names_many(conn, name_keys)
        for key in name_keys:
            assert names[key] == ref.greeting_names(conn, *key) == greeting_names(conn, *key)
        assert names["acme", "C1", "P0"].contact == "Aino"
        overrides = load_overrides_many(conn, ["acme", "beta", "acme"])
        assert list(overrides) == ["acme", "beta"]
        for org_id in ("acme", "beta"):
            assert overrides[org_id] == ref.load_overrides(conn, org_id) == load_overrides(conn, org_id)
        channels = channels_of(conn, ids)
        for nid in ids:
            assert channels.get(nid) == ref.channel_of(conn, nid) == channel_of(conn, nid)


def test_render_reads_each_row_with_its_event_and_names(store: Services, world: World) -> None:
    ids = [*world.ids, UNKNOWN, world.ids[0], *world.email_ids]
    with store.reading() as conn:
        found = load_to_render(conn, ids)
        assert set(found) == set(world.ids) | set(world.email_ids)
        for nid, item in found.items():
            row = load_notification(conn, nid)
            assert row is not None
            assert (item.id, item.org_id, item.event_id, item.customer_id, item.contact_id) == (
                row.id,
                row.org_id,
                row.event_id,
                row.customer_id,
                row.contact_id,
            )
            assert (item.kind, item.channel, item.locale, item.status) == (
                row.kind,
                row.channel,
                row.locale,
                row.status,
            )
            assert item.rendered == (row.body is not None)
            assert item.payload == load_event_payload(conn, row.org_id, row.event_id)
            assert item.names == greeting_names(conn, row.org_id, row.customer_id, row.contact_id)


def test_storing_rendered_texts_in_a_batch_keeps_the_first_text_as_one_by_one(
    store: Services, world: World
) -> None:
    @PROPERTY
    @given(
        st.lists(st.tuples(st.sampled_from([*world.ids, UNKNOWN]), st.sampled_from(["a", "b"])), max_size=12)
    )
    def check(items: list[tuple[str, str]]) -> None:
        each_as_one_by_one(store, ref.store_rendered, store_rendered, store_rendered_many, items)
        emails = [(nid, f"S{t}", f"T{t}", f"<p>{t}</p>") for nid, t in items]
        each_as_one_by_one(
            store, ref.store_rendered_email, store_rendered_email, store_rendered_emails_many, emails
        )

    check()


# --- sms and email ----------------------------------------------------------------------------------


def test_claiming_and_skipping_a_batch_wins_what_one_by_one_wins(store: Services, world: World) -> None:
    @PROPERTY
    @given(_ids(world))
    def check(ids: list[str]) -> None:
        for one_ref, one, many in (
            (ref.claim_for_sending, claim_for_sending, claim_for_sending_many),
            (ref.skip_pending, skip_pending, skip_pending_many),
        ):
            expected, won = same_as_one_by_one(
                store,
                lambda c, f=one_ref: [f(c, nid) for nid in ids],
                lambda c, f=one: [f(c, nid) for nid in ids],
                lambda c, f=many: f(c, ids),
            )
            assert won == {nid for nid, w in zip(ids, expected, strict=True) if w}

    check()


def test_releasing_and_recording_provider_answers_in_a_batch_is_one_by_one(
    store: Services, world: World
) -> None:
    @PROPERTY
    @given(
        _ids(world),
        st.lists(
            st.tuples(st.sampled_from([*world.ids, UNKNOWN]), st.sampled_from(["SM1", "SM2"])), max_size=8
        ),
        st.lists(
            st.tuples(st.sampled_from([*world.ids, UNKNOWN]), st.sampled_from([None, 0, 21610])), max_size=8
        ),
    )
    def check(ids: list[str], accepted: list[tuple[str, str]], refused: list[tuple[str, int | None]]) -> None:
        same_as_one_by_one(
            store,
            lambda c: [ref.release_claim(c, nid) for nid in ids],
            lambda c: [release_claim(c, nid) for nid in ids],
            lambda c: release_claims(c, ids),
        )
        each_as_one_by_one(store, ref.record_provider_id, record_provider_id, record_provider_ids, accepted)
        each_as_one_by_one(store, ref.record_refusal, record_refusal, record_refusals, refused)

    check()


def test_logging_attempts_in_a_batch_numbers_them_as_one_by_one(store: Services, world: World) -> None:
    attempts = st.builds(
        Attempt,
        st.sampled_from(world.ids),
        st.sampled_from(list(Outcome)),
        http_status=st.sampled_from([None, 429, 500]),
        error_code=st.sampled_from([None, 20429]),
        retry_after=st.sampled_from([None, 1.5]),
        detail=st.sampled_from([None, "", "x" * 600]),
        at=st.sampled_from([None, T0]),
    )

    def one(module: Any, conn: Connection, a: Attempt) -> None:
        module.log_attempt(
            conn,
            a.notification_id,
            a.outcome,
            http_status=a.http_status,
            error_code=a.error_code,
            retry_after=a.retry_after,
            detail=a.detail,
            at=a.at,
        )

    @PROPERTY
    @given(st.lists(attempts, max_size=10))
    def check(batch: list[Attempt]) -> None:
        same_as_one_by_one(
            store,
            lambda c: [one(ref, c, a) for a in batch],
            lambda c: [one(TODAY, c, a) for a in batch],
            lambda c: log_attempts(c, batch),
        )

    check()
    with store.reading() as conn:
        ids = [*world.ids, UNKNOWN]
        counts, firsts = count_attempts_many(conn, ids), first_attempts_at(conn, ids)
        for nid in ids:
            assert counts[nid] == ref.count_attempts(conn, nid) == count_attempts(conn, nid)
            assert firsts[nid] == ref.first_attempt_at(conn, nid) == first_attempt_at(conn, nid)
        assert firsts[world.ids[3]] == T0


def test_reserving_and_refunding_credit_in_a_batch_is_one_by_one(store: Services, world: World) -> None:
    items = st.tuples(st.sampled_from([*world.ids, UNKNOWN]), st.sampled_from(ORGS), st.integers(0, 5))

    @PROPERTY
    @given(st.lists(items, max_size=10))
    def check(batch: list[tuple[str, str, int]]) -> None:
        expected, got = each_as_one_by_one(
            store, ref.reserve_credit, reserve_credit, reserve_credit_many, batch
        )
        assert got == expected
        refunds = [(nid, org) for nid, org, _ in batch]
        expected, got = each_as_one_by_one(
            store, ref.refund_credit, refund_credit, refund_credit_many, refunds
        )
        assert got == expected

    check()


def test_a_batch_crossing_the_low_balance_threshold_warns_once_naming_the_reservation_that_crossed(
    store: Services, world: World
) -> None:
    fresh = [nid for nid in world.of("acme") if world.state_of[nid] in (0, 3, 5, 7)]
    with store.transaction() as conn:
        held = reserve_credit_many(conn, [(nid, "acme", 2) for nid in fresh])
        warned = conn.execute(select(org_warnings.c.notification_id, org_warnings.c.detail)).all()
        balance = conn.execute(
            select(organisations.c.credit_balance).where(organisations.c.org_id == "acme")
        ).scalar()
    assert held == [True, True, True, True]
    assert balance == 4  # 12 - 4 x 2
    assert [w.notification_id for w in warned] == [fresh[2]]  # 8 → 6 crossed the threshold of 8
    assert warned[0].detail == "SMS credit balance 6 is under the threshold 8"


def test_pacing_a_batch_of_one_sender_gives_each_message_its_own_slot(store: Services, world: World) -> None:
    @PROPERTY
    @given(
        st.sampled_from(["+1000", "+2000"]),
        st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), max_size=10),
        st.sampled_from([0.0, 2.0, 5.0]),
    )
    def check(sender: str, costs: list[float], max_wait: float) -> None:
        expected, got = same_as_one_by_one(
            store,
            lambda c: [ref.take_slot(c, sender, cost, 1000.0, max_wait) for cost in costs],
            lambda c: [take_slot(c, sender, cost, 1000.0, max_wait) for cost in costs],
            lambda c: take_slots(c, sender, costs, 1000.0, max_wait),
        )
        assert got == expected

    check()


# --- history ----------------------------------------------------------------------------------------


def _apply_one(module: Any, conn: Connection, change: StatusChange) -> bool | None:
    try:
        return bool(module.apply_status(conn, change))
    except MalformedMessage:
        return None


def test_applying_statuses_in_a_batch_moves_and_records_as_one_by_one(store: Services, world: World) -> None:
    changes = st.builds(
        StatusChange,
        st.sampled_from([*world.ids, UNKNOWN]),
        st.sampled_from(list(Status)),
        st.sampled_from(["sms", "twilio"]),
        st.just(T0),
        provider_id=st.sampled_from([None, "", "SM9"]),
        error_code=st.sampled_from([None, 0, 30003]),
        detail=st.sampled_from([None, "carrier said so", "y" * 600]),
    )

    @PROPERTY
    @given(st.lists(changes, max_size=12))
    def check(batch: list[StatusChange]) -> None:
        expected, got = same_as_one_by_one(
            store,
            lambda c: [_apply_one(ref, c, ch) for ch in batch],
            lambda c: [_apply_one(TODAY, c, ch) for ch in batch],
            lambda c: apply_statuses(c, batch),
        )
        assert got == expected

    check()


def test_sent_then_delivered_of_one_notification_in_one_batch_both_move_it(
    store: Services, world: World
) -> None:
    sending = world.of("acme")[3]
    batch = [
        StatusChange(sending, Status.SENT, "sms", T0, provider_id="SM7"),
        StatusChange(sending, Status.DELIVERED, "twilio", T0 + timedelta(seconds=5)),
        StatusChange(sending, Status.SENT, "twilio", T0 + timedelta(seconds=6)),  # late: ignored
    ]
    with store.transaction() as conn:
        assert apply_statuses(conn, batch) == [True, True, False]
        row = load_notification(conn, sending)
        details = conn.execute(
            select(status_changes.c.status, status_changes.c.detail).where(
                status_changes.c.notification_id == sending
            )
        ).all()
    assert row is not None
    assert (row.status, row.provider_id) == (Status.DELIVERED, "SM7")
    assert sorted(details) == [("delivered", None), ("sent", None)]  # the late sent: a duplicate key


# --- a batch mixing every state ---------------------------------------------------------------------


def test_a_batch_mixing_every_state_gets_each_items_outcome(store: Services, world: World) -> None:
    ids = [*world.of("acme"), UNKNOWN]
    # STATES: 0-2 pending, 3 sending, 4 sending (accepted), 5 sent, 6 delivered, 7 failed,
    # 8 skipped, 9 undelivered.
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            assert claim_for_sending_many(conn, ids) == set(ids[0:3])
            tx.rollback()
        with conn.begin() as tx:
            assert skip_pending_many(conn, ids) == set(ids[0:3])
            tx.rollback()
        with conn.begin() as tx:
            release_claims(conn, ids)
            statuses = {nid: r.status for nid, r in load_notifications(conn, ids).items()}
            assert [statuses[nid] for nid in ids[:-1]] == ["pending"] * 4 + [
                "sending",
                "sent",
                "delivered",
                "failed",
                "skipped",
                "undelivered",
            ]
            tx.rollback()
        with conn.begin() as tx:
            record_provider_ids(conn, [(nid, "SM-new") for nid in ids])
            rows = load_notifications(conn, ids)
            kept = [rows[nid].provider_id == "SM-new" for nid in ids[:-1]]
            assert kept == [True, True, True, True, False, False, False, True, True, False]
            tx.rollback()
        with conn.begin() as tx:
            reports = [StatusChange(nid, Status.DELIVERED, "twilio", T0) for nid in ids]
            assert apply_statuses(conn, reports) == [
                True,
                True,
                True,
                True,
                True,
                True,
                False,
                False,
                False,
                False,
                None,
            ]
            ignored = dict(
                conn.execute(
                    select(status_changes.c.notification_id, status_changes.c.detail).where(
                        status_changes.c.notification_id.in_(ids)
                    )
                ).all()
            )
            assert ignored[ids[6]] is None  # delivered again: the one applied, not "ignored"
            assert ignored[ids[7]] == "ignored: already failed"
            assert ignored[ids[9]] == "ignored: already undelivered"
            assert UNKNOWN not in ignored
            tx.rollback()
        with conn.begin() as tx:
            # 0: reserves 2 of 12; 1, 2: hold 2 and 0 already; then 3 (needs 9) is refused.
            wanted = [(ids[0], 2), (ids[1], 5), (ids[2], 5), (ids[3], 11), (UNKNOWN, 1)]
            held = reserve_credit_many(conn, [(nid, "acme", parts) for nid, parts in wanted])
            assert held == [True, True, True, False, True]
            assert refund_credit_many(conn, [(nid, "acme") for nid in ids]) == [
                2,
                2,
                0,
                0,
                3,
                0,
                1,
                0,
                0,
                0,
                0,
            ]
            tx.rollback()


# --- the same batch twice ---------------------------------------------------------------------------


def test_the_same_batch_twice_changes_nothing_the_second_time(store: Services, world: World) -> None:
    ids = [*world.ids, UNKNOWN, *world.email_ids]
    records = [_record(body) for body in ROUTED]
    reports = [StatusChange(nid, s, "twilio", T0) for nid in ids for s in (Status.SENT, Status.DELIVERED)]
    writes: list[tuple[str, Callable[[Connection], Any], tuple[str, ...]]] = [
        # The invoice upsert refreshes updated_at on every delivery, as track_invoice always did.
        ("record_events", lambda c: [r.new for r in record_events(c, records)], ("invoices.updated_at",)),
        ("store_rendered_many", lambda c: store_rendered_many(c, [(nid, "t") for nid in ids]), ()),
        (
            "store_rendered_emails_many",
            lambda c: store_rendered_emails_many(c, [(n, "s", "t", "h") for n in ids]),
            (),
        ),
        ("claim_for_sending_many", lambda c: claim_for_sending_many(c, ids), ()),
        ("skip_pending_many", lambda c: skip_pending_many(c, ids), ()),
        ("release_claims", lambda c: release_claims(c, ids), ()),
        ("record_provider_ids", lambda c: record_provider_ids(c, [(nid, "SM") for nid in ids]), ()),
        # A refusal is written again on a redelivery (updated_at moves), as record_refusal always did.
        (
            "record_refusals",
            lambda c: record_refusals(c, [(nid, 1) for nid in ids]),
            ("notifications.updated_at",),
        ),
        ("apply_statuses", lambda c: apply_statuses(c, reports), ()),
        (
            "reserve_credit_many",
            lambda c: reserve_credit_many(c, [(n, world.org_of.get(n, "acme"), 1) for n in ids]),
            (),
        ),
        (
            "refund_credit_many",
            lambda c: refund_credit_many(c, [(n, world.org_of.get(n, "acme")) for n in ids]),
            (),
        ),
    ]
    with store.engine.connect() as conn:
        for name, work, drifting in writes:
            with conn.begin() as tx:
                first = work(conn)
                after_first = snapshot(conn, exact=True, ignore=drifting)
                second = work(conn)
                assert snapshot(conn, exact=True, ignore=drifting) == after_first, name
                tx.rollback()
            if isinstance(second, set):
                assert second == set(), name
            elif name == "record_events":
                assert second == [False] * len(records)
            elif name == "apply_statuses":
                assert not any(second)
                assert first != second
            elif name == "reserve_credit_many":
                assert second == first  # held stays held, refused stays refused
                assert not all(first)
            elif name == "refund_credit_many":
                assert not any(second)
                assert any(first)


# --- racing batches ---------------------------------------------------------------------------------


def test_batches_racing_for_credit_in_opposite_orders_neither_deadlock_nor_overspend(store: Services) -> None:
    event = _event("race")
    with store.transaction() as conn:
        update_org(conn, "race", {"buys_credit": True, "credit_balance": 10})
        record_event(conn, event, event_to_json(event), "routed")
        ids = record_notifications(conn, event, [_sms(f"P{n}") for n in range(8)])
    won: list[list[bool]] = []

    def reserve(order: list[str]) -> Callable[[], None]:
        def work() -> None:
            for _ in range(2):  # a redelivered batch reserves nothing twice
                with store.transaction() as conn:
                    held = reserve_credit_many(conn, [(nid, "race", 3) for nid in order])
            won.append(held)

        return work

    race([reserve(ids), reserve(ids[::-1]), reserve(ids[2:] + ids[:2])])
    with store.reading() as conn:
        balance = conn.execute(
            select(organisations.c.credit_balance).where(organisations.c.org_id == "race")
        ).scalar()
        segments = (
            conn.execute(select(notifications.c.segments).where(notifications.c.id.in_(ids))).scalars().all()
        )
    assert balance == 1
    assert sorted(s or 0 for s in segments) == [0] * 5 + [3] * 3


def test_overlapping_claim_batches_win_each_notification_once(store: Services) -> None:
    event = _event("claims")
    with store.transaction() as conn:
        record_event(conn, event, event_to_json(event), "routed")
        ids = record_notifications(conn, event, [_sms(f"P{n}") for n in range(30)])
    won: list[set[str]] = []

    def claim(part: list[str]) -> Callable[[], None]:
        def work() -> None:
            with store.transaction() as conn:
                won.append(claim_for_sending_many(conn, part))

        return work

    race([claim(ids[:20]), claim(ids[10:]), claim(ids[::-1]), claim(ids[5:25])])
    assert sorted(nid for w in won for nid in w) == sorted(ids)


def test_a_batch_whose_notification_another_transaction_moved_judges_it_again(store: Services) -> None:
    """A ``sent`` of the first holds its row while the batch comes to read ``sending`` for both: the
    batch waits, then its ``delivered`` must still land, and the other notification move as planned."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): the two never overlap")
    event = _event("acme", "evt_race")
    with store.transaction() as conn:
        record_event(conn, event, event_to_json(event), "routed")
        first_id, other_id = record_notifications(conn, event, [_sms("P1"), _sms("P2")])
        claim_for_sending_many(conn, [first_id, other_id])
    moved: list[list[bool | None]] = []

    def deliver() -> None:
        with store.transaction() as conn:
            moved.append(
                apply_statuses(
                    conn,
                    [
                        StatusChange(first_id, Status.DELIVERED, "twilio", T0, "SM1"),
                        StatusChange(other_id, Status.SENT, "sms", T0, "SM2"),
                    ],
                )
            )

    def sent(conn: Connection) -> None:
        assert apply_status(conn, StatusChange(first_id, Status.SENT, "sms", T0, "SM1"))

    while_row_locked(store, sent, deliver)  # deliver waits for "sent" to commit, then reads
    assert moved == [[True, True]]
    with store.reading() as conn:
        rows = load_notifications(conn, [first_id, other_id])
    assert (rows[first_id].status, rows[other_id].status) == (Status.DELIVERED, Status.SENT)


# --- statements for 100 items -----------------------------------------------------------------------

#: The most statements each batch function may send for 100 items (what they send is printed).
BOUNDS = {
    "load_orgs": 1,
    "load_customers": 3,
    "invoices_paid": 1,
    "record_events": 8,
    # + the status outbox's notification.decided rows: one executemany.
    "record_notifications_many": 3,
    "track_invoices": 4,
    "load_notifications": 1,
    "load_event_payloads": 1,
    "load_to_render": 1,
    "greeting_names_many": 3,
    "load_overrides_many": 1,
    "store_rendered_many": 1,
    "store_rendered_emails_many": 1,
    "reserve_credit_many": 5,
    "take_slots": 3,
    "claim_for_sending_many": 1,
    "skip_pending_many": 1,
    "record_provider_ids": 1,
    "record_refusals": 1,
    "release_claims": 1,
    "log_attempts": 2,
    "count_attempts_many": 1,
    "first_attempts_at": 1,
    "refund_credit_many": 3,
    # + the status outbox: one SELECT of what its events carry (the notifications' ids), one INSERT.
    "apply_statuses": 5,
    "channels_of": 1,
}


def test_a_batch_of_100_takes_a_handful_of_statements(store: Services) -> None:
    orgs = [f"org{n}" for n in range(10)]
    with store.transaction() as conn:
        for org in orgs:
            update_org(conn, org, {"buys_credit": True, "credit_balance": 1000, "low_balance_threshold": 990})
            line = {**customer("C1"), "org_id": org}
            upsert_customer(conn, CustomerRecord.model_validate(line), region="FI")
    created = [
        _record({**invoice_created(f"evt_{n}", id=f"INV-{n}"), "org_id": orgs[n % 10]}) for n in range(100)
    ]
    sent: dict[str, int] = {}

    def measure(name: str, conn: Connection, work: Callable[[], T]) -> T:
        with counting(conn) as statements:
            result = work()
        sent[name] = len(statements)
        return result

    with store.transaction() as conn:
        c = conn
        measure("load_orgs", c, lambda: load_orgs(c, [r.event.org_id for r in created], "FI"))
        measure(
            "load_customers",
            c,
            lambda: load_customers(c, [(r.event.org_id, f"C{n}") for n, r in enumerate(created)]),
        )
        measure(
            "invoices_paid",
            c,
            lambda: invoices_paid(c, [(r.event.org_id, r.event.invoice_id, Decimal(1)) for r in created]),
        )
        recorded = measure("record_events", c, lambda: record_events(c, created))
        sms = [r.pending[0] for r in recorded]
        emails = [r.pending[1] for r in recorded]
        assert len(set(sms + emails)) == 200
        again = [(r.event, list(r.notifications)) for r in created]
        measure("record_notifications_many", c, lambda: record_notifications_many(c, again))
        measure("track_invoices", c, lambda: track_invoices(c, [r.event for r in created]))
        rows = measure("load_notifications", c, lambda: load_notifications(c, sms))
        measure(
            "load_event_payloads",
            c,
            lambda: load_event_payloads(c, [(r.org_id, r.event_id) for r in rows.values()]),
        )
        measure("load_to_render", c, lambda: load_to_render(c, sms))
        keys = [(r.org_id, r.customer_id, r.contact_id) for r in rows.values()]
        measure("greeting_names_many", c, lambda: greeting_names_many(c, keys))
        measure("load_overrides_many", c, lambda: load_overrides_many(c, [r.org_id for r in rows.values()]))
        measure("store_rendered_many", c, lambda: store_rendered_many(c, [(nid, "Hei") for nid in sms]))
        measure(
            "store_rendered_emails_many",
            c,
            lambda: store_rendered_emails_many(c, [(n, "S", "T", "H") for n in emails]),
        )
        held = measure(
            "reserve_credit_many", c, lambda: reserve_credit_many(c, [(n, rows[n].org_id, 2) for n in sms])
        )
        assert all(held)
        assert c.execute(select(org_warnings.c.id)).all()  # 1000 → 990 crossed 990: warned
        waits = measure("take_slots", c, lambda: take_slots(c, "+1000", [1.0] * 100, 5000.0, 1000.0))
        assert waits == [float(n) for n in range(100)]
        assert measure("claim_for_sending_many", c, lambda: claim_for_sending_many(c, sms)) == set(sms)
        measure("skip_pending_many", c, lambda: skip_pending_many(c, emails))
        measure("record_provider_ids", c, lambda: record_provider_ids(c, [(n, f"SM{n}") for n in sms[:50]]))
        measure("record_refusals", c, lambda: record_refusals(c, [(n, 21211) for n in sms[50:]]))
        measure("release_claims", c, lambda: release_claims(c, sms))
        outcomes = [Attempt(n, Outcome.ACCEPTED if i < 50 else Outcome.REFUSED) for i, n in enumerate(sms)]
        measure("log_attempts", c, lambda: log_attempts(c, outcomes))
        measure("count_attempts_many", c, lambda: count_attempts_many(c, sms))
        measure("first_attempts_at", c, lambda: first_attempts_at(c, sms))
        measure(
            "refund_credit_many", c, lambda: refund_credit_many(c, [(n, rows[n].org_id) for n in sms[50:]])
        )
        reports = [StatusChange(n, Status.SENT, "sms", T0, f"SM{n}") for n in sms[:50]] + [
            StatusChange(n, Status.FAILED, "sms", T0, error_code=21211) for n in sms[50:]
        ]
        moved = measure("apply_statuses", c, lambda: apply_statuses(c, reports))
        assert moved == [True] * 100
        measure("channels_of", c, lambda: channels_of(c, sms))
    print(f"\nstatements for 100 items on {store.engine.dialect.name}: {sent}")  # the report quotes them
    over = {name: n for name, n in sent.items() if n > BOUNDS[name]}
    assert not over, f"over the bound: {over} (bounds {BOUNDS})"
    assert set(sent) == set(BOUNDS)
