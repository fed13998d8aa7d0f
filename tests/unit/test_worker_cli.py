"""``herald worker``: every Procfile stage is one it knows."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra import topology
from producers.cli import app

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def test_every_procfile_line_runs_a_stage_herald_worker_accepts_the_http_app_scheduler_or_webhooks() -> None:
    lines = dict(line.split(": ", 1) for line in PROCFILE.read_text().splitlines() if line.strip())
    assert lines.pop("api").startswith("herald api --port ")
    assert lines.pop("scheduler") == "herald scheduler"
    assert lines.pop("webhooks") == "herald webhooks run"
    assert set(lines) == set(topology.STAGES + topology.PLAIN_STAGES)
    assert all(command == f"herald worker {name}" for name, command in lines.items())


def test_an_unknown_stage_is_refused_naming_the_known_ones() -> None:
    result = CliRunner().invoke(app, ["worker", "mail"])
    assert result.exit_code == 2
    known = "route, render, sms, email, history, collect, ingest"
    assert f"unknown stage 'mail'; expected one of {known}" in result.output


@pytest.mark.parametrize(
    ("stage", "setting"),
    [
        pytest.param("collect", "HERALD_GOCARDLESS_ACCESS_TOKEN", id="collect-without-a-gocardless-token"),
        pytest.param("email", "HERALD_SMTP_FROM", id="email-without-a-from-address"),
    ],
)
def test_a_stage_refuses_to_start_without_a_setting_it_needs(
    monkeypatch: pytest.MonkeyPatch, stage: str, setting: str
) -> None:
    from infra.settings import get_settings

    monkeypatch.delenv(setting, raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["worker", stage])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert f"stage {stage}: missing setting(s): {setting}" in result.output
