"""``herald schema``: the event JSON Schema, for publishers in any language."""

from __future__ import annotations

import json

import typer

from schemas.events import event_json_schema


def schema() -> None:
    """Print the JSON Schema of one event (the envelope and every type)."""
    typer.echo(json.dumps(event_json_schema(), indent=2, sort_keys=True))
