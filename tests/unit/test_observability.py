"""Observability, the pure parts: metric labels and ports, outcomes, log context, secrets,
queue-status rates, readiness checks."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import dramatiq
import pytest
from prometheus_client import REGISTRY

from infra import log_context, logs, metrics
from infra.errors import MalformedMessage, TransientProviderError
from infra.logs import JsonFormatter, register_secrets
from infra.middleware.log_context import LogContext
from infra.middleware.metrics import Metrics, outcome
from infra.queue_status import (
    StageStatus,
    apply_management_rates,
    apply_sampled_rates,
    management_url,
    vhost_of,
)
from infra.readiness import run_checks
from infra.settings import Settings, get_settings
from producers.cli.context import invocation
from producers.cli.worker import _metrics_fork


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_stage_of_strips_the_prefix_and_the_delay_or_dead_letter_suffix() -> None:
    assert metrics.stage_of("herald.sms", "herald") == "sms"
    assert metrics.stage_of("herald.sms.DQ", "herald") == "sms"
    assert metrics.stage_of("run-1.history.XQ", "run-1") == "history"


def test_each_process_type_has_its_own_port_and_port_0_turns_metrics_off() -> None:
    ports = {t: metrics.metrics_port(9410, t) for t in metrics.METRICS_OFFSETS}
    assert ports["route"] == 9410
    assert ports["sms"] == 9412
    assert len(set(ports.values())) == len(ports)
    assert metrics.metrics_port(0, "sms") is None
    assert metrics.metrics_port(9410, "nonsense") is None


def test_a_worker_on_one_stage_is_that_stage_and_one_on_several_is_none() -> None:
    assert metrics.single_stage({"herald.sms", "herald.sms.DQ"}, "herald") == "sms"
    assert metrics.single_stage({"herald.sms", "herald.route"}, "herald") is None
    assert metrics.single_stage(None, "herald") is None


def _message(failed: bool = False) -> Any:
    return SimpleNamespace(queue_name="herald.sms", failed=failed, options={})


@pytest.mark.parametrize(
    ("exception", "failed", "expected"),
    [
        (None, False, "ok"),
        (TransientProviderError("busy"), False, "retried"),
        (dramatiq.Retry("later"), False, "retried"),
        (TransientProviderError("busy"), True, "failed"),
        (MalformedMessage("bad"), True, "dead_lettered"),
    ],
)
def test_outcome_of_a_try(exception: BaseException | None, failed: bool, expected: str) -> None:
    assert outcome(_message(failed), exception) == expected


def test_the_middleware_counts_outcomes_retries_by_kind_and_times_each_try() -> None:
    middleware = Metrics("herald")
    before = {
        "ok": _value("herald_messages_total", stage="sms", outcome="ok"),
        "retried": _value("herald_messages_total", stage="sms", outcome="retried"),
        "deferred": _value("herald_message_retries_total", stage="sms", kind="deferred"),
        "count": _value("herald_message_duration_seconds_count", stage="sms"),
    }
    for exc in (None, dramatiq.Retry("sender busy")):
        message = _message()
        middleware.before_process_message(None, message)
        middleware.after_process_message(None, message, exception=exc)
    assert _value("herald_messages_total", stage="sms", outcome="ok") == before["ok"] + 1
    assert _value("herald_messages_total", stage="sms", outcome="retried") == before["retried"] + 1
    assert _value("herald_message_retries_total", stage="sms", kind="deferred") == before["deferred"] + 1
    assert _value("herald_message_duration_seconds_count", stage="sms") == before["count"] + 2


def test_provider_errors_are_counted_by_code_and_none_without_one() -> None:
    before = _value("herald_provider_errors_total", provider="twilio", code="21211")
    none_before = _value("herald_provider_errors_total", provider="twilio", code="none")
    metrics.provider_error("twilio", 21211)
    metrics.provider_error("twilio", None)
    assert _value("herald_provider_errors_total", provider="twilio", code="21211") == before + 1
    assert _value("herald_provider_errors_total", provider="twilio", code="none") == none_before + 1


def _json_line(logger_name: str, message: str, *args: Any, **extra: Any) -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info(message, *args, extra=extra)
    finally:
        logger.removeHandler(handler)
    line = stream.getvalue()
    assert line.count("\n") == 1
    return dict(json.loads(line), _raw=line)


def test_ids_bound_for_a_message_are_on_every_line_it_logs_and_gone_after() -> None:
    log_context.bind(stage="sms", **log_context.ids_from_body({"notification_id": "ntf_1a", "x": 1}))
    log_context.bind(event_id="evt_9")
    try:
        entry = _json_line("herald.test", "sms accepted for +358 40 1234567")
        assert (entry["notification_id"], entry["event_id"], entry["stage"]) == ("ntf_1a", "evt_9", "sms")
        assert "1234567" not in entry["_raw"]  # phone numbers stay masked
        assert "+358" in entry["msg"]
    finally:
        log_context.clear()
    assert "notification_id" not in _json_line("herald.test", "idle")


def test_a_single_messages_event_id_is_read_from_the_store_only_when_a_line_is_logged_once() -> None:
    reads: list[str] = []

    class Store:
        def reading(self) -> Any:
            reads.append("read")
            raise ConnectionError("no store here")  # the look-up must never fail the message

    middleware = LogContext("herald", lambda: Store())  # type: ignore[arg-type, return-value]
    message = SimpleNamespace(args=({"notification_id": "ntf_1a"},), queue_name="herald.sms")
    middleware.before_process_message(None, message)
    try:
        assert reads == []  # a message that logs nothing costs no read
        with log_context.bound(notification_id="ntf_2b"):  # an item's own ids, around its lines
            assert _json_line("herald.test", "item")["notification_id"] == "ntf_2b"
        entry = _json_line("herald.test", "sent")
        assert (entry["notification_id"], entry["stage"]) == ("ntf_1a", "sms")
        _json_line("herald.test", "again")
        assert reads == ["read"]  # looked up once, when the first line was logged
    finally:
        middleware.after_process_message(None, message)
    assert log_context.current() == {}


def test_ids_bound_around_an_item_are_dropped_after_it() -> None:
    log_context.bind(stage="render")
    try:
        with log_context.bound(notification_id="ntf_1a", event_id="evt_1"):
            assert log_context.current() == {
                "stage": "render",
                "notification_id": "ntf_1a",
                "event_id": "evt_1",
            }
        assert log_context.current() == {"stage": "render"}
    finally:
        log_context.clear()


def test_context_is_per_thread() -> None:
    log_context.bind(notification_id="ntf_aa")
    seen: list[dict[str, str]] = []
    thread = threading.Thread(target=lambda: seen.append(log_context.current()))
    thread.start()
    thread.join()
    log_context.clear()
    assert seen == [{}]


def test_a_line_logged_while_secret_settings_are_in_play_never_contains_them() -> None:
    settings = Settings(
        twilio_auth_token="tw-auth-0123456789abcdef",  # type: ignore[arg-type]
        amqp_url="amqp://herald:rabbit-pass-42@mq.internal:5672/%2F",  # type: ignore[arg-type]
        smtp_password="smtp-secret-pw",  # type: ignore[arg-type]
        database_url="sqlite:////var/lib/herald/herald.db",  # type: ignore[arg-type]
    )
    register_secrets(settings)
    try:
        entry = _json_line(
            "herald.test",
            "calling %s with %s",
            settings.amqp_url.get_secret_value(),
            settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else "",
            settings=settings,
            nested={"password": "smtp-secret-pw"},
            database=settings.database_url.get_secret_value(),
        )
    finally:
        register_secrets(get_settings())
    raw = entry["_raw"]
    for secret in ("tw-auth-0123456789abcdef", "rabbit-pass-42", "smtp-secret-pw"):
        assert secret not in raw
    assert "mq.internal" in raw  # the rest of a URL is not secret
    assert entry["database"] == "sqlite:////var/lib/herald/herald.db"


def test_management_url_is_derived_from_the_amqp_url_unless_given() -> None:
    url = "amqp://user:pw@mq.example:5672/billing"
    assert management_url(url) == "http://user:pw@mq.example:15672"
    assert management_url("amqps://mq.example/") == "https://mq.example:15672"
    assert management_url(url, "http://ops:x@mgmt:8080/") == "http://ops:x@mgmt:8080"
    assert vhost_of(url) == "billing"
    assert vhost_of("amqp://g:g@h:5672/%2F") == "/"
    assert vhost_of("amqp://g:g@h:5672") == "/"


def test_management_rates_fill_published_and_delivered_per_queue() -> None:
    rows = [StageStatus("sms", "herald.sms", ready=5, consumers=1), StageStatus("email", "herald.email")]
    apply_management_rates(
        rows,
        [
            {
                "name": "herald.sms",
                "message_stats": {"publish_details": {"rate": 2.5}, "deliver_get_details": {"rate": 2.0}},
            },
        ],
    )
    assert (rows[0].published_per_s, rows[0].delivered_per_s) == (2.5, 2.0)
    assert rows[1].published_per_s is None  # not declared: nothing to say


def test_sampled_rates_are_the_net_change_per_second() -> None:
    first = [StageStatus("sms", "herald.sms", ready=10), StageStatus("email", "herald.email")]
    second = [StageStatus("sms", "herald.sms", ready=4), StageStatus("email", "herald.email")]
    apply_sampled_rates(first, second, 2.0)
    assert second[0].net_change_per_s == -3.0
    assert second[1].net_change_per_s is None


def test_readiness_names_what_failed_and_what_hung() -> None:
    hang = threading.Event()

    def broken() -> None:
        raise ConnectionRefusedError("connection refused to amqp://u:p@10.0.0.1 for +358401234567")

    results = {r.name: r for r in run_checks({"ok": lambda: None, "bad": broken, "slow": hang.wait}, 0.3)}
    hang.set()
    assert results["ok"].ok
    assert not results["bad"].ok
    assert "ConnectionRefusedError" in (results["bad"].error or "")
    assert "401234567" not in (results["bad"].error or "")
    assert not results["slow"].ok
    assert "within 0.3s" in (results["slow"].error or "")


def test_herald_worker_sets_up_multiprocess_metrics_unless_port_is_0(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROMETHEUS_MULTIPROC_DIR", "HERALD_METRICS_STAGE"):
        monkeypatch.setenv(name, "")  # so monkeypatch restores the variable's absence afterwards
        monkeypatch.delenv(name)
    assert _metrics_fork("sms", 0) == []
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert _metrics_fork("sms", 9410) == ["--fork", "workers.start:metrics"]
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.path.isdir(path)
    assert os.listdir(path) == []
    assert os.environ["HERALD_METRICS_STAGE"] == "sms"
    os.rmdir(path)


# --- The api process's logs: uvicorn's lines through herald's formatter (issue 13, defect 9a) ---


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Whatever a test does to the root logger and uvicorn's loggers is undone after it."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logs._handler)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
    loggers = {n: logging.getLogger(n) for n in names}
    saved_loggers = {
        n: (list(lg.handlers), lg.level, lg.propagate, list(lg.filters)) for n, lg in loggers.items()
    }
    yield
    root.handlers[:], root.level, logs._handler = saved[0], saved[1], saved[2]
    for name, (handlers, level, propagate, filters) in saved_loggers.items():
        lg = loggers[name]
        lg.handlers[:], lg.level, lg.propagate, lg.filters[:] = handlers, level, propagate, filters


def test_uvicorns_tracebacks_and_access_lines_are_herald_json_masked_and_redacted(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(twilio_auth_token="tw-auth-0123456789abcdef")  # type: ignore[arg-type]
    logs.configure_logging(settings, "INFO", "json")
    try:
        logging.config.dictConfig(logs.uvicorn_log_config("INFO"))
        try:
            raise RuntimeError("no route to +358401234567 for aino@example.fi with tw-auth-0123456789abcdef")
        except RuntimeError as exc:
            # What uvicorn does with an exception an app lets through (protocols/http/h11_impl.py).
            logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=exc)
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "203.0.113.7:50412",
            "GET",
            "/x?to=%2B358401234567&at=2024-12-01",
            "1.1",
            404,
        )
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "203.0.113.7:50412", "GET", "/healthz", "1.1", 200
        )
        logging.getLogger("uvicorn.error").info("Uvicorn running on http://127.0.0.1:8080")
    finally:
        register_secrets(get_settings())
    raw = capsys.readouterr().err
    assert "401234567" not in raw
    assert "aino@" not in raw
    assert "tw-auth-0123456789abcdef" not in raw
    lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
    crash, access, running = lines  # the successful probe is not logged
    assert (crash["logger"], crash["level"]) == ("uvicorn.error", "error")
    assert "RuntimeError: no route to +358*******67 for a***@example.fi with ***" in crash["exc"]
    assert (access["logger"], access["level"]) == ("uvicorn.access", "info")
    assert {k: access[k] for k in ("client", "method", "path", "status")} == {
        "client": "203.0.113.7:50412",
        "method": "GET",
        "path": "/x?to=%2B358*******67&at=2024-12-01",
        "status": 404,
    }
    assert running["msg"] == "Uvicorn running on http://127.0.0.1:8080"


def test_herald_api_logs_json_at_the_configured_level_and_hands_uvicorn_that_config(
    root_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from producers.cli import api_cmd

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs, app=app))
    settings = get_settings()
    with invocation(settings):  # what the root callback opens
        api_cmd.api(host="127.0.0.1", port=8099)
    assert seen["log_config"] == logs.uvicorn_log_config(settings.log_level)
    assert seen.get("log_level") is None  # the config sets the levels; uvicorn must not reset them
    assert seen.get("access_log", True) is True
    assert logs._handler is not None
    assert isinstance(logs._handler.formatter, JsonFormatter) == (settings.log_format == "json")
    assert logging.getLogger().level == logging.getLevelName(settings.log_level)


def test_a_webhooks_round_adds_what_it_did_to_its_counter() -> None:
    from producers.webhooks.runner import Counts

    before = {o: _value("herald_webhooks_total", outcome=o) for o in metrics.WEBHOOK_OUTCOMES}
    Counts(fanned_out=3, delivered=2, failed=1, published=3, paused=["wh_1"], pruned=4).count()
    Counts().count()  # an idle round counts nothing
    after = {o: _value("herald_webhooks_total", outcome=o) for o in metrics.WEBHOOK_OUTCOMES}
    added = {o: after[o] - before[o] for o in metrics.WEBHOOK_OUTCOMES}
    assert added == {"fanned_out": 3, "delivered": 2, "failed": 1, "published": 3, "paused": 1, "pruned": 4}


def test_the_webhooks_process_has_a_metrics_port_of_its_own() -> None:
    assert metrics.metrics_port(9410, "webhooks") == 9418
