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

from infra.errors import InvalidEvent, PublishError
from producers.cli.console import err, interactive, out
from producers.cli.context import settings as cli_settings
from producers.publisher import Publisher
from schemas.validation import parse_event

EXIT_REJECTED = 1
EXIT_PUBLISH_FAILED = 2


_BOM = b"\xef\xbb\xbf"


def _lines(source: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(number, line, size)`` for each non-blank line, without its line ending.

    Bytes, not text: each line is decoded on its own, so one that is not UTF-8 is rejected
    alone. A line over ``max_bytes`` is never held whole: it is skipped as it is read and comes
    as ``(number, None, size)``.
    """
    number = 0
    while True:
        chunk = source.readline(max_bytes + 2)  # room for a line at the limit and its "\r\n"
        if not chunk:
            return
        number += 1
        size = len(chunk)
        if len(chunk) == max_bytes + 2:  # perhaps longer still: skip the rest, counting it
            while chunk and not chunk.endswith(b"\n"):
                chunk = source.readline(64 * 1024)
                size += len(chunk)
        ending = 2 if chunk.endswith(b"\r\n") else 1 if chunk.endswith(b"\n") else 0
        size -= ending
        if size > max_bytes:
            yield number, None, size
            continue
        line = chunk[: len(chunk) - ending]
        if number == 1 and line.startswith(_BOM):  # a byte order mark, as some editors write
            line = line[len(_BOM) :]
            size -= len(_BOM)
        if line.strip():
            yield number, line, size


def publish(
    file: str = typer.Argument("-", help="JSON Lines file of events, or - for standard input."),
    batch_size: int = typer.Option(1000, min=1, help="Events per confirmed batch."),
) -> None:
    """Validate and publish events; print every rejected line with its number and reason.

    Exit status: 0 all published, 1 some lines rejected (the valid ones are
    published), 2 publishing failed (only confirmed events are counted).
    """
    settings = cli_settings()
    if file != "-" and not Path(file).is_file():
        err.print(f"[red]error:[/] {file}: no such file")
        raise typer.Exit(EXIT_PUBLISH_FAILED)
    source: IO[bytes] = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
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
            batch: list[tuple[str, bytes]] = []
            for number, line, size in _lines(source, settings.max_event_bytes):
                try:
                    if line is None:
                        raise InvalidEvent(
                            f"event is {size} bytes, over the limit of {settings.max_event_bytes} bytes"
                        )
                    event = parse_event(
                        line, max_bytes=settings.max_event_bytes, max_depth=settings.max_json_depth
                    )
                    batch.append(publisher.encode(event))  # the limit on the message as sent
                except InvalidEvent as exc:
                    rejected += 1
                    err.print(f"line {number}: {exc.reason}", markup=False)
                    continue
                if len(batch) >= batch_size:
                    published += publisher.publish_encoded(batch, on_confirmed=confirmed)
                    batch = []
            if batch:
                published += publisher.publish_encoded(batch, on_confirmed=confirmed)
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
