"""``herald dlq``: what ended in the dead-letter queues, why, and putting it back.

herald dlq list                       # dead letters waiting, per stage
herald dlq show sms [ID]              # id, tries and reason of each; one in full with its ID
herald dlq replay sms ID | --all      # back to the stage's queue (idempotent stages: never twice)
herald dlq purge sms [--yes]          # delete them

The dead letters themselves, and each of these operations: ``infra.dead_letters``.
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from infra import dead_letters, topology
from infra.errors import PublishError
from producers.cli.console import err, out, refusals
from producers.cli.context import settings as cli_settings

app = typer.Typer(help="Dead-lettered messages: list, show, replay, purge.", no_args_is_help=True)


def _stage(stage: str) -> str:
    if stage not in dead_letters.STAGES:
        err.print(
            f"error: unknown stage {stage!r}; expected one of {', '.join(dead_letters.STAGES)}", markup=False
        )
        raise typer.Exit(2)
    return stage


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Dead letters waiting per stage."""
    settings = cli_settings()
    counts = dead_letters.waiting(settings)
    if as_json:
        typer.echo(json.dumps(counts))
        return
    table = Table(title="dead letters")
    table.add_column("stage")
    table.add_column("queue")
    table.add_column("messages", justify="right")
    for stage, count in counts.items():
        queue = topology.dead_letter_queue(topology.queue_name(settings.queue_prefix, stage))
        table.add_row(stage, queue, str(count))
    out.print(table)


@app.command("show")
def show(
    stage: str = typer.Argument(..., help="The stage whose dead letters to show."),
    message_id: str | None = typer.Argument(None, help="One dead letter, in full."),
    limit: int = typer.Option(50, min=1, help="At most this many."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Peek at dead letters (they stay in the queue): id, tries, reason; masked."""
    _stage(stage)
    if message_id is not None:
        with refusals():
            item = dead_letters.detail(cli_settings(), stage, message_id)
        if as_json:
            typer.echo(json.dumps(item, indent=2))
            return
        for key, value in item.items():
            out.print(f"{key}: {value}", markup=False)
        return
    with refusals():
        items = dead_letters.peek(cli_settings(), stage, limit)
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    table = Table(title=f"dead letters of {stage}")
    for column in ("id", "attempts", "reason"):
        table.add_column(column)
    for item in items:
        table.add_row(str(item["id"]), str(item["attempts"]), str(item["reason"]))
    out.print(table)


@app.command("replay")
def replay(
    stage: str = typer.Argument(..., help="The stage whose dead letters to replay."),
    message_id: str | None = typer.Argument(None, help="The dead letter to replay."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter of the stage."),
) -> None:
    """Put dead letters back on the stage's queue, through the normal path.

    Each stage is idempotent (event and notification ids), so a replayed message whose work was
    done already does nothing twice: an SMS that was sent is only reported again.
    """
    _stage(stage)
    if (message_id is None) == (not replay_all):
        err.print("error: give one dead letter's ID or --all", markup=False)
        raise typer.Exit(2)
    try:
        with refusals():
            replayed = dead_letters.replay(cli_settings(), stage, message_id)
    except PublishError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"replayed {replayed} to {stage}", markup=False)


@app.command("purge")
def purge(
    stage: str = typer.Argument(..., help="The stage whose dead letters to delete."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
) -> None:
    """Delete every dead letter of a stage."""
    _stage(stage)
    if not yes and not typer.confirm(f"delete every dead letter of stage {stage}?"):
        raise typer.Exit(1)
    with refusals():
        count = dead_letters.purge(cli_settings(), stage)
    out.print(f"purged {count} from {stage}", markup=False)
