"""``herald webhooks`` on both stores: add prints the id and the secret once, every command stays in
its organisation, hostile arguments are refused naming what is wrong, and the process runs a round."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from infra.bootstrap import Services
from producers.cli import app as cli
from tests.integration.webhook_helpers import every_event_type
from tooling.sandboxes.webhook_receiver import WebhookReceiver


def _run(store: Services, *args: str) -> Result:
    settings = store.settings.model_copy(update={"status_exchange": False})
    return CliRunner().invoke(cli, ["webhooks", *args], obj=settings)


def _add(store: Services, url: str, org: str = "acme", *extra: str) -> tuple[str, str]:
    made = _run(store, "add", url, "--org", org, *extra)
    assert made.exit_code == 0, made.output
    lines = dict(line.split(" ", 1) for line in made.stdout.splitlines())
    return lines["endpoint"], lines["secret"]


def test_add_prints_the_id_and_secret_once_and_list_never_shows_it(store: Services) -> None:
    endpoint, secret = _add(store, "https://billing.example.com/h", "acme", "--events", "notification.sent")
    assert endpoint.startswith("whe_")
    assert secret.startswith("whsec_")
    listed = _run(store, "list", "--org", "acme", "--json")
    assert listed.exit_code == 0
    shown = json.loads(listed.stdout)
    assert [(e["endpoint_id"], e["events"]) for e in shown] == [(endpoint, ["notification.sent"])]
    assert secret not in listed.output
    assert secret not in _run(store, "list", "--org", "acme").output


def test_every_command_refuses_another_organisations_endpoint_like_a_missing_one(store: Services) -> None:
    theirs, their_secret = _add(store, "https://other.example.com/h", "other")
    commands: list[list[str]] = [
        ["remove"],
        ["rotate-secret"],
        ["test"],
        ["deliveries"],
        ["replay", "--since", "2026-01-01T00:00:00"],
        ["resume"],
    ]
    for command in commands:
        for endpoint in (theirs, "whe_0000000000000000"):
            result = _run(store, command[0], "--endpoint", endpoint, "--org", "acme", *command[1:])
            assert result.exit_code == 1, (command, result.output)
            assert "no webhook endpoint" in result.output
            assert their_secret not in result.output
    assert len(json.loads(_run(store, "list", "--org", "other", "--json").stdout)) == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["add", "http://billing.example.com/h", "--org", "acme"], "plain http:// is only allowed"),
        (["add", "https://e.com/\x1b[2J", "--org", "acme"], "control characters"),
        (["add", "https://e.com/" + "a" * 5000, "--org", "acme"], "at most 2000"),
        (["add", "https://e.com/h", "--org", "acme", "--events", "nope"], "unknown type 'nope'"),
        (["add", "https://e.com/h", "--org", "ac me\n"], "org: 1-200 characters"),
        (["add", "https://e.com/h", "--org", "x" * 300], "org: 1-200 characters"),
        (["resume", "--endpoint", "../../etc/passwd", "--org", "acme"], "is not a webhook endpoint id"),
        (["resume", "--endpoint", "whe_\x00\x01", "--org", "acme"], "is not a webhook endpoint id"),
        (["deliveries", "--endpoint", "whe_0000000000000000", "--org", "acme", "--limit", "0"], "limit"),
    ],
)
def test_hostile_arguments_are_refused_naming_what_is_wrong(
    store: Services, args: list[str], said: str
) -> None:
    result = _run(store, *args)
    assert result.exit_code in (1, 2), result.output
    assert said in result.output
    assert "Traceback" not in result.output


def test_replay_since_is_a_time(store: Services) -> None:
    endpoint, _ = _add(store, "https://e.com/h")
    result = _run(store, "replay", "--endpoint", endpoint, "--org", "acme", "--since", "yesterday")
    assert result.exit_code == 2
    assert "since" in result.output


def test_run_once_delivers_and_deliveries_shows_each_attempt(store: Services) -> None:
    with WebhookReceiver() as receiver:
        endpoint, secret = _add(store, receiver.url + "/h", "acme", "--events", "payment.created")
        receiver.state.secrets = [secret]
        every_event_type(store)
        ran = _run(store, "run", "--once")
        assert ran.exit_code == 0, ran.output
        assert "delivered 1" in ran.output
        assert [r.type for r in receiver.state.accepted()] == ["payment.created"]
        shown = _run(store, "deliveries", "--endpoint", endpoint, "--org", "acme", "--json")
        attempts: list[dict[str, Any]] = json.loads(shown.stdout)
        assert [(a["type"], a["response"], a["outcome"]) for a in attempts] == [
            ("payment.created", 204, "delivered")
        ]
        assert secret not in shown.output
        tested = _run(store, "test", "--endpoint", endpoint, "--org", "acme")
        assert tested.exit_code == 0
        assert "HTTP 204" in tested.output
        rotated = _run(
            store, "rotate-secret", "--endpoint", endpoint, "--org", "acme", "--overlap-hours", "0"
        )
        assert rotated.exit_code == 0
        assert (
            _run(store, "test", "--endpoint", endpoint, "--org", "acme").exit_code == 1
        )  # receiver has the old one
        assert _run(store, "remove", "--endpoint", endpoint, "--org", "acme").exit_code == 0
        assert json.loads(_run(store, "list", "--org", "acme", "--json").stdout) == []
