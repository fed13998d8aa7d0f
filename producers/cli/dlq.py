"""``herald dlq``: what ended in the dead-letter queues, why, and putting it back.

herald dlq list                       # dead letters waiting, per stage
herald dlq show sms [ID]              # id, tries and reason of each; one in full with its ID
herald dlq replay sms ID | --all      # back to the stage's queue (idempotent stages: never twice)
herald dlq purge sms [--yes]          # delete them
"""

from __future__ import annotations

import json

import pika
import typer
from rich.table import Table

from infra import topology
from infra.masking import mask_text
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings
from producers.cli.dead_letters import DeadLetter, dead_letters

app = typer.Typer(help="Dead-lettered messages: list, show, replay, purge.", no_args_is_help=True)

ALL_STAGES = topology.PLAIN_STAGES + topology.STAGES


def _stage(stage: str) -> str:
    if stage not in ALL_STAGES:
        err.print(f"error: unknown stage {stage!r}; expected one of {', '.join(ALL_STAGES)}", markup=False)
        raise typer.Exit(2)
    return stage


def _missing(stage: str) -> typer.Exit:
    err.print(f"no dead-letter queue for stage {stage} (nothing has failed there)", markup=False)
    return typer.Exit(1)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Dead letters waiting per stage."""
    settings = cli_settings()
    counts: dict[str, int] = {}
    for stage in ALL_STAGES:
        try:
            with dead_letters(settings, stage) as letters:
                counts[stage] = letters.count()
        except pika.exceptions.ChannelClosedByBroker:
            counts[stage] = 0  # not declared yet: nothing ever failed there
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


def _detail(letter: DeadLetter) -> dict[str, object]:
    item: dict[str, object] = {
        **letter.summary(),
        "reason": mask_text(letter.reason),
        "body": mask_text(letter.body.decode("utf-8", "replace")[:2000]),
    }
    if letter.traceback:
        item["traceback"] = mask_text(letter.traceback)
    return item


@app.command("show")
def show(
    stage: str = typer.Argument(..., help="The stage whose dead letters to show."),
    message_id: str | None = typer.Argument(None, help="One dead letter, in full."),
    limit: int = typer.Option(50, min=1, help="At most this many."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Peek at dead letters (they stay in the queue): id, tries, reason; masked."""
    _stage(stage)
    try:
        with dead_letters(cli_settings(), stage) as letters:
            if message_id is None:
                fetched = letters.fetch(limit)
                items = [{**letter.summary(), "reason": mask_text(letter.reason)} for letter in fetched]
            else:
                items = [_detail(letter) for letter in letters.fetch() if letter.id == message_id]
    except pika.exceptions.ChannelClosedByBroker:
        raise _missing(stage) from None
    if message_id is not None and not items:
        err.print(f"no dead letter {message_id} in stage {stage}", markup=False)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(items if message_id is None else items[0], indent=2))
        return
    if message_id is not None:
        for key, value in items[0].items():
            out.print(f"{key}: {value}", markup=False)
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
    replayed = 0
    try:
        with dead_letters(cli_settings(), stage) as letters:
            for letter in letters.fetch():
                if replay_all or letter.id == message_id:
                    letters.replay(letter)
                    replayed += 1
    except pika.exceptions.ChannelClosedByBroker:
        raise _missing(stage) from None
    except pika.exceptions.UnroutableError:
        err.print(f"error: RabbitMQ could not route a replayed message of stage {stage}", markup=False)
        raise typer.Exit(1) from None
    if message_id is not None and replayed == 0:
        err.print(f"no dead letter {message_id} in stage {stage}", markup=False)
        raise typer.Exit(1)
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
    try:
        with dead_letters(cli_settings(), stage) as letters:
            count = letters.purge()
    except pika.exceptions.ChannelClosedByBroker:
        raise _missing(stage) from None
    out.print(f"purged {count} from {stage}", markup=False)
