"""The published JSON Schema is a contract: it changes only on purpose."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import SCHEMA_VERSION, event_json_schema

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / f"event.schema.v{SCHEMA_VERSION}.json"


def test_the_event_schema_matches_the_committed_file_of_its_version() -> None:
    committed = json.loads(COMMITTED.read_text())
    assert event_json_schema() == committed, (
        f"the event JSON Schema differs from {COMMITTED.name}. Old producers validate against that file. "
        "A compatible addition (a new optional field): regenerate it with "
        f"`herald schema > schemas/{COMMITTED.name}`. A change that breaks old producers (a field removed, "
        "renamed, newly required or retyped): bump SCHEMA_VERSION and commit a new file beside the old one."
    )


def test_every_field_old_producers_must_send_is_still_required() -> None:
    committed = json.loads(COMMITTED.read_text())
    current = event_json_schema()
    for name, definition in committed["$defs"].items():
        assert name in current["$defs"], f"{name} was removed"
        assert (
            set(current["$defs"][name].get("required", [])) <= set(definition.get("required", [])) | set()
        ), f"{name} requires fields old producers do not send"
