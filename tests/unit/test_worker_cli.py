"""``herald worker``: every Procfile stage is one it knows."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra import topology
from producers.cli import app

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def test_every_procfile_line_runs_a_stage_herald_worker_accepts_and_the_http_app() -> None:
    lines = dict(line.split(": ", 1) for line in PROCFILE.read_text().splitlines() if line.strip())
    assert lines.pop("api").startswith("herald api --port ")
    assert lines.pop("scheduler") == "herald scheduler"
    assert set(lines) == set(topology.STAGES + topology.PLAIN_STAGES)
    assert all(command == f"herald worker {name}" for name, command in lines.items())


def test_an_unknown_stage_is_refused_naming_the_known_ones() -> None:
    result = CliRunner().invoke(app, ["worker", "mail"])
    assert result.exit_code == 2
    known = "route, render, sms, email, history, collect, ingest"
    assert f"unknown stage 'mail'; expected one of {known}" in result.output


def test_collect_refuses_to_start_without_a_gocardless_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.settings import get_settings

    monkeypatch.delenv("HERALD_GOCARDLESS_ACCESS_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker", "collect"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "stage collect: missing setting(s): HERALD_GOCARDLESS_ACCESS_TOKEN" in result.output


def test_the_email_stage_refuses_to_start_without_a_from_address(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra.settings import get_settings

    monkeypatch.delenv("HERALD_SMTP_FROM", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker", "email"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "stage email: missing setting(s): HERALD_SMTP_FROM" in result.output
