"""The typed rows the store hands the rules (``schemas.rows``): one field per column, and aware times."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import Table

from infra.store.tables import gc_billing_requests, invoices, notifications
from schemas.rows import BillingRequestRow, InvoiceRow, NotificationRow
from tests.factories import invoice_row, notification_row


@pytest.mark.parametrize(
    ("row", "table"),
    [(NotificationRow, notifications), (BillingRequestRow, gc_billing_requests), (InvoiceRow, invoices)],
)
def test_a_row_has_a_field_per_column_of_its_table_in_order_and_no_other(row: type, table: Table) -> None:
    assert [f.name for f in fields(row)] == list(table.columns.keys())


def test_a_naive_time_as_sqlite_hands_it_back_is_read_as_utc() -> None:
    naive = datetime(2026, 11, 23, 10, 0)
    row = notification_row(updated_at=naive, attempted_at=naive, swept_at=None)
    assert row.updated_at == row.attempted_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert row.swept_at is None


def test_every_row_class_reads_its_naive_times_as_utc() -> None:
    naive = datetime(2026, 11, 23, 10, 0)
    invoice = replace(invoice_row(), paid_at=naive, updated_at=naive)
    assert invoice.paid_at == invoice.updated_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    request = BillingRequestRow(
        **{f.name: None for f in fields(BillingRequestRow) if f.name != "created_at"}, created_at=naive
    )
    assert request.created_at == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_a_row_that_is_not_a_time_is_left_as_it_came() -> None:
    row = notification_row(body="2026-11-23 10:00", error_code=21211)
    assert row.body == "2026-11-23 10:00"
    assert row.error_code == 21211
