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


def test_the_gathering_stages_the_settings_name_are_the_registrys() -> None:
    from infra.settings import GATHERING_STAGES
    from workers.registry import GATHERED

    assert set(GATHERED) == GATHERING_STAGES


@pytest.mark.parametrize(
    ("database_url", "worker_threads", "expected"),
    [
        pytest.param(
            "sqlite:///herald.db",
            None,
            {"route": 1, "render": 1, "sms": 1, "history": 1, "email": 4, "collect": 4},
            id="sqlite: one thread for a batch stage",
        ),
        pytest.param(
            "postgresql+psycopg://h@db/herald",
            None,
            {"route": 1, "render": 1, "sms": 1, "history": 1, "email": 4, "collect": 4},
            id="postgresql: the same",
        ),
        pytest.param("sqlite:///herald.db", 3, dict.fromkeys(topology.STAGES, 3), id="set: as set"),
    ],
)
def test_worker_threads_per_stage(
    database_url: str, worker_threads: int | None, expected: dict[str, int]
) -> None:
    from pydantic import SecretStr

    from infra.settings import Settings

    settings = Settings(database_url=SecretStr(database_url), worker_threads=worker_threads)
    assert {stage: settings.threads_for(stage) for stage in topology.STAGES} == expected


@pytest.mark.parametrize(("stage", "threads"), [("route", "1"), ("collect", "4")])
def test_herald_worker_starts_dramatiq_with_the_stages_threads(
    monkeypatch: pytest.MonkeyPatch, stage: str, threads: str
) -> None:
    import os

    from infra.settings import get_settings

    started: list[list[str]] = []

    def execv(_path: str, argv: list[str]) -> None:
        started.append(argv)
        raise SystemExit(0)

    monkeypatch.setenv("HERALD_DATABASE_URL", "sqlite:///herald.db")
    monkeypatch.setenv("HERALD_GOCARDLESS_ACCESS_TOKEN", "gc-test-token")
    monkeypatch.delenv("HERALD_WORKER_THREADS", raising=False)
    monkeypatch.setenv("HERALD_METRICS_PORT", "0")  # no metrics directory made in this process
    for name in ("PROMETHEUS_MULTIPROC_DIR", "HERALD_METRICS_STAGE"):
        # Restored to absent afterwards, whatever the command sets: the e2e processes inherit this
        # process's environment, and a leaked PROMETHEUS_MULTIPROC_DIR put ingest's counters in files.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(os, "execv", execv)
    get_settings.cache_clear()
    try:
        CliRunner().invoke(app, ["worker", stage])
    finally:
        get_settings.cache_clear()
    [argv] = started
    assert argv[argv.index("--threads") + 1] == threads
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
