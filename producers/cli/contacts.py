"""``herald contacts``: load the directory of customers and contacts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer
from pydantic import ValidationError

from infra.store.directory import upsert_customer
from producers.cli.console import err, out
from producers.cli.store import open_store
from schemas.directory import CustomerRecord
from schemas.validation import describe_validation_error

app = typer.Typer(help="Load and inspect the contact directory.", no_args_is_help=True)


def _parse(line: str) -> CustomerRecord:
    try:
        return CustomerRecord.model_validate(json.loads(line))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None


@app.command("import")
def import_(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Upsert customers from JSON Lines (one customer per line).

    Idempotent: importing the same file twice changes nothing the second time.
    Each line is reported; a bad line never stops the others; exit status 1
    when any line failed.
    """
    svc = open_store()
    region = svc.settings.default_region
    counts: Counter[str] = Counter()
    with file.open(encoding="utf-8") as source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                record = _parse(line)
                with svc.transaction() as conn:
                    outcome = upsert_customer(conn, record, region=region)
            except ValueError as exc:
                counts["failed"] += 1
                err.print(f"line {number}: failed: {exc}", markup=False)
                continue
            counts[outcome] += 1
            out.print(f"line {number}: {record.org_id}/{record.customer_id}: {outcome}", markup=False)
    out.print(
        f"{counts['created']} created, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['failed']} failed"
    )
    if counts["failed"]:
        raise typer.Exit(1)
