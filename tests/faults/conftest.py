"""Fault fixtures: the integration layer's in-process pipeline, and Procfile deployments that clean up."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.faults.helpers import delete_queues
from tests.integration.conftest import (
    configured_env,
    gocardless_sandbox,
    pipeline,
    pipeline_fields,
    smtp_sandbox,
    twilio_sandbox,
)

__all__ = [
    "configured_env",
    "gocardless_sandbox",
    "pipeline",
    "pipeline_fields",
    "smtp_sandbox",
    "twilio_sandbox",
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only, not both stores: these runs are long, and what they kill is a process, not the store."""
    return f"sqlite:///{tmp_path / 'herald.db'}"


@pytest.fixture
def deployment(herald_env: dict[str, str], tmp_path: Path) -> Iterator[Deployment]:
    """A deployment with its own queue prefix; its process groups are stopped and queues deleted after."""
    deployment = Deployment(herald_env, tmp_path)
    yield deployment
    deployment.stop_all()
    delete_queues(deployment)
