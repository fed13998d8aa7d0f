"""Fault fixtures reuse the integration layer's in-process pipeline and the e2e deployment."""

from pathlib import Path

import pytest

from tests.e2e.conftest import deployment
from tests.integration.conftest import configured_env, pipeline, smtp_sandbox, twilio_sandbox

__all__ = ["configured_env", "deployment", "pipeline", "smtp_sandbox", "twilio_sandbox"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only, not both stores: these runs are long, and what they kill is a process, not the store."""
    return f"sqlite:///{tmp_path / 'herald.db'}"
