"""``herald publish``: JSON Lines in, confirmed events out, every bad line named."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import IO

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from infra.errors import PublishError
from infra.settings import get_settings
from producers.cli.console import err, interactive, out
from producers.publisher import Publisher
from schemas.events import Event
from schemas.validation import EventRejected, parse_event

EXIT_REJECTED = 1
EXIT_PUBLISH_FAILED = 2


def _lines(source: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(source, start=1):
        if line.strip():
            yield number, line


def publish(
    file: str = typer.Argument("-", help="JSON Lines file of events, or - for standard input."),
    batch_size: int = typer.Option(1000, min=1, help="Events per confirmed batch."),
) -> None:
    """Validate and publish events; print every rejected line with its number and reason.

    Exit status: 0 all published, 1 some lines rejected (the valid ones are
    published), 2 publishing failed (only confirmed events are counted).
    """
    settings = get_settings()
    if file != "-" and not Path(file).is_file():
        err.print(f"[red]error:[/] {file}: no such file")
        raise typer.Exit(EXIT_PUBLISH_FAILED)
    source: IO[str] = sys.stdin if file == "-" else open(file, encoding="utf-8")  # noqa: SIM115
    rejected = 0
    published = 0
    progress = (
        Progress(
            TextColumn("publishing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        if interactive()
        else None
    )
    task = progress.add_task("publish", total=None) if progress else None

    def confirmed(count: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, count)

    try:
        with source, Publisher(settings) as publisher, progress or nullcontext():
            batch: list[Event] = []
            for number, line in _lines(source):
                try:
                    batch.append(parse_event(line, max_bytes=settings.max_event_bytes))
                except EventRejected as exc:
                    rejected += 1
                    err.print(f"line {number}: {exc.reason}", markup=False)
                    continue
                if len(batch) >= batch_size:
                    published += publisher.publish_many(batch, on_confirmed=confirmed)
                    batch = []
            if batch:
                published += publisher.publish_many(batch, on_confirmed=confirmed)
    except PublishError as exc:
        published += len(exc.confirmed)
        err.print(f"[red]error:[/] {escape(str(exc))}")
        out.print(
            f"published {published} events (confirmed by RabbitMQ) before the failure; the rest were not"
        )
        raise typer.Exit(EXIT_PUBLISH_FAILED) from None
    out.print(f"published {published} events; rejected {rejected} lines")
    if rejected:
        raise typer.Exit(EXIT_REJECTED)
