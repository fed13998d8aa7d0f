"""One composition root: nothing is built at import, the actors are declared at start-up on the
broker they are given under the contract's names, and every boot builds exactly what it is given."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from typer.testing import CliRunner

from infra import topology
from infra.bootstrap import bootstrap, shutdown
from infra.broker import Emitter
from infra.errors import ConfigurationError
from infra.middleware.lifecycle import Lifecycle
from infra.settings import Settings
from producers.cli import app
from schemas.messages import REGISTRY, StageMessage
from tests.fakes import FakeSms
from workers.registry import HANDLERS, declare

ROOT = Path(__file__).resolve().parents[2]


def _messages() -> list[type[StageMessage]]:
    """Every message type of the registry: each has a function of its stage."""
    assert set(HANDLERS) <= set(REGISTRY.values())
    return list(REGISTRY.values())


@pytest.fixture
def global_broker() -> Iterator[None]:
    """dramatiq's process-wide broker, as it was before the test."""
    before = dramatiq.broker.global_broker
    yield
    dramatiq.set_broker(before)  # type: ignore[arg-type]


def test_importing_the_runtime_builds_no_broker_and_declares_no_actor() -> None:
    code = (
        "import dramatiq.broker, infra.broker, infra.bootstrap, workers.registry, workers.start, "
        "producers.cli, producers.api.app\n"
        "assert dramatiq.broker.global_broker is None, dramatiq.broker.global_broker\n"
        "assert not hasattr(infra.broker, 'broker') and not hasattr(infra.broker, 'emit')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_registry_message_has_an_actor_under_its_contract_names() -> None:
    broker = StubBroker()
    actors = declare(
        broker, lambda: pytest.fail("no message is processed"), topology.STAGES, queue_prefix="acme"
    )
    assert {name: (a.queue_name, a.fn.__name__) for name, a in actors.items()} == {
        m.actor: (f"acme.{m.stage}", m.actor) for m in _messages()
    }
    assert set(broker.actors) == {m.actor for m in _messages()}
    declared = {q for q in broker.get_declared_queues() if not q.endswith(".DQ")}
    assert declared == {f"acme.{stage}" for stage in topology.STAGES}


def test_a_stage_declares_only_its_own_actors() -> None:
    broker = StubBroker()
    declare(broker, lambda: pytest.fail("no message is processed"), ["route"], queue_prefix="herald")
    assert set(broker.actors) == {"route_event", "route_events", "route_mandate_setup"}
    with pytest.raises(ValueError, match="no dramatiq stage 'ingest'"):
        declare(StubBroker(), lambda: pytest.fail("unused"), ["ingest"], queue_prefix="herald")


def test_the_worker_start_callable_composes_the_stage_without_connecting(global_broker: None) -> None:
    from workers.start import start

    settings = Settings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F", queue_prefix="acme")  # type: ignore[arg-type]
    broker = start("sms", settings)
    assert dramatiq.get_broker() is broker
    assert set(broker.actors) == {"send_sms", "send_sms_batch"}
    assert broker.actors["send_sms"].queue_name == "acme.sms"
    assert broker.actors["send_sms_batch"].queue_name == "acme.sms"
    assert broker.connections == set()  # nothing opened before dramatiq's worker starts
    (lifecycle,) = [m for m in broker.middleware if isinstance(m, Lifecycle)]
    with pytest.raises(ConfigurationError, match="not booted"):
        lifecycle.services()  # booted when the worker starts, in the worker process, not here


def test_the_lifecycle_boots_the_services_on_its_broker_when_the_worker_starts_and_shuts_them_down(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'herald.db'}", queue_prefix="acme")  # type: ignore[arg-type]
    broker = StubBroker()
    lifecycle = Lifecycle(settings)
    broker.add_middleware(lifecycle)
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        booted = lifecycle.services()
        assert booted.settings is settings
        assert booted.emitter.broker is broker
        assert booted.emitter.queue("sms") == "acme.sms"
    finally:
        worker.stop()
    with pytest.raises(ConfigurationError):
        lifecycle.services()


def test_each_boot_builds_what_it_is_given_and_never_returns_another_boots_services(tmp_path: Path) -> None:
    first_settings = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}")  # type: ignore[arg-type]
    other_settings = Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}", queue_prefix="other")  # type: ignore[arg-type]
    fake = FakeSms()
    first = bootstrap(first_settings, sms=fake)
    second = bootstrap(other_settings, emitter=Emitter(StubBroker(), "other"))
    try:
        assert second is not first
        assert second.settings is other_settings
        assert str(second.engine.url).endswith("b.db")
        assert first.sms is fake
        assert second.emitter.queue_prefix == "other"
    finally:
        shutdown(first)
        shutdown(second)


def test_the_cli_hands_its_commands_the_settings_it_was_given_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERALD_GOCARDLESS_ACCESS_TOKEN", "from-the-environment")
    given = Settings(gocardless_access_token=None)
    result = CliRunner().invoke(app, ["worker", "collect"], obj=given)
    assert result.exit_code == 2
    assert "stage collect: missing setting(s): HERALD_GOCARDLESS_ACCESS_TOKEN" in result.output
