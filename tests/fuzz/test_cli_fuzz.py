"""Fuzzing ``herald publish`` and ``herald contacts import`` on files of good and hostile lines (in
process, through typer's runner): the good lines go, each bad line is named by its number, and
no traceback, whatever the bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, note, settings
from typer.testing import CliRunner

from producers.cli import app as cli
from tests.fuzz import strategies as hostile
from tests.fuzz.conftest import FUZZ, World

pytestmark = pytest.mark.integration

_REPORTED = re.compile(r"^lines? ([\d, ]+):", re.MULTILINE)


def _write(path: Path, lines: list[hostile.Line]) -> None:
    path.write_bytes(b"".join(line.raw + b"\n" for line in lines))
    for number, line in enumerate(lines, start=1):
        note(f"line {number}: {line!r}")


def _reported(text: str) -> set[int]:
    """The line numbers the command named in ``text``."""
    return {int(n) for match in _REPORTED.finditer(text) for n in match.group(1).split(",")}


def _clean(result: object, output: str) -> None:
    exception = getattr(result, "exception", None)
    assert exception is None or isinstance(exception, SystemExit), (
        f"the command raised {type(exception).__name__}: {exception}"
    )
    assert "Traceback" not in output, output[-2000:]


@pytest.mark.stores("sqlite")
@settings(FUZZ, max_examples=25)
@given(lines=hostile.publish_file())
def test_publish_sends_every_good_line_and_names_every_bad_line_by_number(
    cli_env: World, tmp_path: Path, lines: list[hostile.Line]
) -> None:
    path = tmp_path / "events.jsonl"
    _write(path, lines)
    result = CliRunner().invoke(cli, ["publish", str(path)])
    published = [e["event_id"] for e in cli_env.drain_events()]
    _clean(result, result.output)
    reported = _reported(result.stderr)
    for number, line in enumerate(lines, start=1):
        if line.verdict == "good":
            assert number not in reported, f"good line {number} was rejected: {result.stderr[-1500:]}"
            assert line.key in published, f"good line {number} was not published"
        elif line.verdict == "bad":
            assert number in reported, (
                f"bad line {number} ({line.why}) was not named: {result.stderr[-1500:]}"
            )
        else:
            assert (number in reported) != (line.key in published), f"line {number} neither sent nor named"
    assert reported <= set(range(1, len(lines) + 1)), f"named lines that do not exist: {sorted(reported)}"
    summary = f"published {len(published)} events; rejected {len(reported)} lines"
    assert summary in result.stdout, result.output[-1500:]
    assert result.exit_code == (1 if reported else 0)


@settings(FUZZ, max_examples=25)
@given(lines=hostile.import_file())
def test_contacts_import_stores_every_good_line_and_names_every_bad_line_by_number(
    cli_env: World, tmp_path: Path, lines: list[hostile.Line]
) -> None:
    path = tmp_path / "directory.jsonl"
    _write(path, lines)
    result = CliRunner().invoke(cli, ["contacts", "import", str(path)])
    _clean(result, result.output)
    failed = {n for n in _reported(result.output) if re.search(rf"^line {n}: failed", result.output, re.M)}
    stored = {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"^line (\d+): (\S+): (?:created|updated|unchanged)", result.stdout, re.M)
    }
    for number, line in enumerate(lines, start=1):
        if line.verdict == "good":
            assert stored.get(number) == line.key, f"good line {number} not imported: {result.output[-1500:]}"
        elif line.verdict == "bad":
            assert number in failed, (
                f"bad line {number} ({line.why}) was not named as failed: {result.output[-1500:]}"
            )
        else:
            assert (number in failed) != (number in stored), f"line {number} neither imported nor named"
    assert set(stored) | failed == set(range(1, len(lines) + 1)), result.output[-1500:]
    assert result.exit_code == (1 if failed else 0)
