"""Fault fixtures reuse the integration layer's in-process pipeline and the e2e deployment."""

from tests.e2e.conftest import deployment
from tests.integration.conftest import configured_env, pipeline, twilio_sandbox

__all__ = ["configured_env", "deployment", "pipeline", "twilio_sandbox"]
