"""Fault fixtures reuse the integration layer's in-process pipeline."""

from tests.integration.conftest import configured_env, pipeline, twilio_sandbox

__all__ = ["configured_env", "pipeline", "twilio_sandbox"]
