"""The documented commands: ``herald sandbox vonage --port N`` as its own process, the official
SDK talking to it through the settings alone, and ``herald integrations connect vonage``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from infra.adapters.vonage_sms import VonageSms
from infra.bootstrap import Services, bootstrap, build_vonage, shutdown
from infra.errors import TransientProviderError
from infra.settings import Settings, get_settings
from infra.store.integrations import load_integration
from producers.cli import app
from tests.conftest import wait_for
from tests.integration.local_http import served
from tooling.sandboxes.vonage import VonageConfig, VonageSandbox

KEY, SECRET = "abcd1234", "sandbox-secret"
runner = CliRunner()


def test_the_sandbox_command_serves_tls_that_the_sdk_trusts_through_the_settings(tmp_path: Path) -> None:
    herald = shutil.which("herald") or str(Path(sys.executable).parent / "herald")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_VONAGE")}
    refused = subprocess.run(
        [herald, "sandbox", "vonage", "--port", "0"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "HERALD_VONAGE_API_KEY" in refused.stderr
    env |= {"HERALD_VONAGE_API_KEY": KEY, "HERALD_VONAGE_API_SECRET": SECRET}
    ca = tmp_path / "ca.pem"
    with served(
        [herald, "sandbox", "vonage", "--port", "0", "--ca-file", str(ca)], env=env, cwd=tmp_path
    ) as out:
        line = out.readline().strip()
        assert line.startswith("vonage sandbox listening on https://127.0.0.1:")
        assert line.endswith(f"(CA: {ca})")
        host = line.split("https://", 1)[1].split(" ", 1)[0]
        settings = Settings(
            vonage_api_key=KEY,
            vonage_api_secret=SecretStr(SECRET),
            vonage_rest_url=host,
            vonage_api_url=host,
            vonage_ca_bundle=str(ca),
            _env_file=None,
        )
        adapter = build_vonage(settings)
        try:
            sent = adapter.send(to="+447700900999", sender="ACME", body="from the CLI", status_callback=None)
            assert adapter.fetch_status(sent.provider_id)[0] in ("sent", "delivered")
            # The fault plan over HTTP, as the fault suite drives it: a 503 storm of two.
            plan = httpx.post(
                f"https://{host}/sandbox/faults", json={"times": 2, "status": 503}, verify=str(ca)
            )
            assert plan.json()["pending"] == 2
            for _ in range(2):
                with pytest.raises(TransientProviderError):
                    adapter.send(to="+447700900999", sender="ACME", body="storm", status_callback=None)
            adapter.send(to="+447700900999", sender="ACME", body="after the storm", status_callback=None)
        finally:
            adapter.close()


def test_services_build_the_vonage_gateway_on_first_use_and_close_it(tmp_path: Path) -> None:
    with VonageSandbox(VonageConfig(KEY, SECRET)) as sandbox:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/h.db",
            vonage_api_key=KEY,
            vonage_api_secret=SecretStr(SECRET),
            vonage_rest_url=sandbox.host,
            vonage_api_url=sandbox.host,
            vonage_ca_bundle=sandbox.ca_file,
            _env_file=None,
        )
        services = bootstrap(settings)
        gateway = services.vonage_sms
        assert isinstance(gateway, VonageSms)
        assert services.vonage_sms is gateway
        gateway.send(to="+447700900999", sender="ACME", body="x", status_callback=None)
        shutdown(services)
        wait_for(lambda: len(sandbox.messages()) == 1, what="the message")


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[VonageSandbox, Services]]:
    with VonageSandbox(VonageConfig(KEY, SECRET)) as sandbox:
        for name, value in {
            "HERALD_DATABASE_URL": f"sqlite:///{tmp_path}/h.db",
            "HERALD_VONAGE_API_KEY": KEY,
            "HERALD_VONAGE_API_SECRET": SECRET,
            "HERALD_VONAGE_FROM": "ACME",
            "HERALD_VONAGE_REST_URL": sandbox.host,
            "HERALD_VONAGE_API_URL": sandbox.host,
            "HERALD_VONAGE_CA_BUNDLE": sandbox.ca_file,
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        services = bootstrap(get_settings())
        yield sandbox, services
        shutdown(services)
    monkeypatch.undo()
    get_settings.cache_clear()


def _herald(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_connect_vonage_checks_key_and_secret_at_vonage(
    cli_store: tuple[VonageSandbox, Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, services = cli_store
    ok = _herald("integrations", "connect", "vonage")
    assert ok.exit_code == 0, ok.output
    assert f"vonage connected ({KEY}, balance 10.00)" in ok.stdout
    monkeypatch.setenv("HERALD_VONAGE_API_SECRET", "wrong")
    get_settings.cache_clear()
    refused = _herald("integrations", "connect", "vonage")
    assert refused.exit_code == 1
    assert "refused the API key and secret" in refused.output
    assert "wrong" not in refused.output
    monkeypatch.delenv("HERALD_VONAGE_FROM")
    get_settings.cache_clear()
    missing = _herald("integrations", "connect", "vonage")
    assert missing.exit_code == 1
    assert "HERALD_VONAGE_FROM" in missing.output
    with services.reading() as conn:
        row = load_integration(conn, "vonage")
    assert row is not None
    assert row["status"] == "connected"  # a failed re-check changes nothing
    off = _herald("integrations", "disconnect", "vonage")
    assert off.exit_code == 0, off.output
