"""The api process's edge (issue 13): failed authentication logged and throttled, docs and metrics
exposure, HEAD on the probes, security headers, an unhandled error answered 500 in the one shape
and logged once, and the one error shape for every framework error on every route."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from infra.bootstrap import Services
from infra.logs import JsonFormatter
from infra.store.api_keys import revoke_key
from infra.store.tables import api_keys
from producers.api.app import create_app
from producers.api.pages import MANDATE_COMPLETE_PATH
from tests.integration.api.conftest import MAX_BODY, Api

#: Well-formed keys nobody made.
UNKNOWN_KEY = "hk_" + "Q" * 43
OTHER_UNKNOWN_KEY = "hk_" + "R" * 43


def _app(store: Services, **settings: Any) -> FastAPI:
    return create_app(store.settings.model_copy(update={"api_max_body_bytes": MAX_BODY, **settings}), store)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _shape(answer: Any) -> dict[str, Any]:
    """The error of an answer, asserting the one shape."""
    body = answer.json()
    assert set(body) == {"error"}, answer.text
    assert set(body["error"]) == {"code", "message", "details"}, answer.text
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    assert isinstance(body["error"]["details"], list)
    error: dict[str, Any] = body["error"]
    return error


# --- Failed authentication: logged (defect 9c) ----------------------------------------------------


def _auth_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "herald.api.auth"]


def test_each_failed_authentication_is_logged_with_its_reason_and_client_never_the_key(
    api: Api, store: Services, caplog: pytest.LogCaptureFixture
) -> None:
    view = api.keys["view"]
    with store.transaction() as conn:
        key_id = conn.execute(api_keys.select().where(api_keys.c.name == "view key")).first().key_id
        revoke_key(conn, key_id)
    caplog.set_level(logging.INFO, logger="herald.api.auth")
    asks: list[tuple[dict[str, str], str]] = [
        ({}, "missing"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "malformed"),
        (_bearer("not-a-herald-key-at-all"), "malformed"),
        (_bearer(UNKNOWN_KEY), "unknown"),
        (_bearer(view), "revoked"),
    ]
    for headers, _reason in asks:
        assert api.client.get("/contacts/P1", headers=headers).status_code == 401
    assert api.call("GET", "/contacts/P1", api.keys["admin"]).status_code == 200  # success: no line
    records = _auth_records(caplog)
    assert [(r.levelno, r.reason) for r in records] == [(logging.WARNING, reason) for _, reason in asks]  # type: ignore[attr-defined]
    assert {r.client for r in records} == {"testclient"}  # type: ignore[attr-defined]
    unknown, revoked = records[3], records[4]
    assert unknown.key_prefix == UNKNOWN_KEY[:7]  # type: ignore[attr-defined]
    assert not hasattr(unknown, "key_id")
    assert (revoked.key_id, revoked.key_prefix) == (key_id, view[:7])  # type: ignore[attr-defined]
    assert not hasattr(records[2], "key_prefix")  # not a herald key: nothing of it is logged
    lines = "\n".join(JsonFormatter().format(r) for r in records)
    for secret in (UNKNOWN_KEY[7:], view[7:], "not-a-herald-key-at-all", "dXNlcjpwYXNz"):
        assert secret not in lines


# --- Failed authentication: throttled (defect 11) -------------------------------------------------


def test_repeated_failed_authentication_from_one_address_is_429_with_retry_after(
    api: Api, store: Services, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(store, api_auth_failures_per_minute=3)
    hostile = TestClient(app, client=("198.51.100.7", 40000))
    neighbour = TestClient(app, client=("203.0.113.9", 40000))
    caplog.set_level(logging.INFO, logger="herald.api.auth")
    for _ in range(3):
        assert hostile.get("/contacts/P1", headers=_bearer(UNKNOWN_KEY)).status_code == 401
    throttled = hostile.get("/contacts/P1", headers=_bearer(UNKNOWN_KEY))
    assert throttled.status_code == 429
    error = _shape(throttled)
    assert error["code"] == "too_many_requests"
    assert "too many failed authentications" in error["message"]
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    # Throttled, the address is not heard at all: a valid key too waits (no guess is checked).
    assert hostile.get("/contacts/P1", headers=_bearer(api.keys["view"])).status_code == 429
    assert hostile.get("/contacts/P1").status_code == 429
    # Unkeyed routes are not throttled: the probes and the providers' callbacks still answer.
    assert hostile.get("/healthz").status_code == 200
    # Another address is not affected, and its own failures are its own.
    assert neighbour.get("/contacts/P1", headers=_bearer(api.keys["view"])).status_code == 200
    assert neighbour.get("/contacts/P1", headers=_bearer(UNKNOWN_KEY)).status_code == 401
    records = _auth_records(caplog)
    assert [r.reason for r in records] == ["unknown"] * 3 + ["throttled", "unknown"]  # type: ignore[attr-defined]
    assert records[3].client == "198.51.100.7"  # type: ignore[attr-defined]


# --- /docs, /redoc, /openapi.json and /metrics exposure (defect 11) --------------------------------

DOCS = ("/docs", "/redoc", "/openapi.json")


@pytest.mark.parametrize("exposure", ["public", "key", "off"])
def test_docs_and_metrics_exposure_follow_the_settings(api: Api, store: Services, exposure: str) -> None:
    client = TestClient(_app(store, api_docs_exposure=exposure, api_metrics_exposure=exposure))
    for path in (*DOCS, "/metrics"):
        anonymous = client.get(path)
        keyed = client.get(path, headers=_bearer(api.keys["view"]))  # any valid key, the weakest too
        wrong = client.get(path, headers=_bearer(UNKNOWN_KEY))
        if exposure == "public":
            assert (anonymous.status_code, keyed.status_code, wrong.status_code) == (200, 200, 200), path
        elif exposure == "key":
            assert (anonymous.status_code, keyed.status_code, wrong.status_code) == (401, 200, 401), path
            assert _shape(anonymous)["code"] == "unauthorized"
        else:
            assert (anonymous.status_code, keyed.status_code) == (404, 404), path
            assert _shape(keyed)["code"] == "not_found"
    if exposure != "off":
        spec = client.get("/openapi.json", headers=_bearer(api.keys["view"])).json()
        assert "/events" in spec["paths"]
        assert not {"/docs", "/redoc", "/openapi.json", "/metrics"} & set(spec["paths"])


def test_docs_and_metrics_settings_are_independent(api: Api, store: Services) -> None:
    client = TestClient(_app(store, api_docs_exposure="off", api_metrics_exposure="public"))
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").status_code == 404
    client = TestClient(_app(store, api_docs_exposure="public", api_metrics_exposure="key"))
    assert client.get("/metrics").status_code == 401
    assert client.get("/openapi.json").status_code == 200


# --- HEAD on the probes (defect 11) ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_a_probe_answers_as_get_does(api: Api, path: str) -> None:
    got = api.client.get(path)
    head = api.client.head(path)
    assert head.status_code == got.status_code
    assert head.status_code in (200, 503)  # /readyz is 503 when this test's broker is elsewhere
    assert head.content == b""


# --- Security headers (defect 11) -----------------------------------------------------------------

COMMON = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _csp(answer: Any) -> dict[str, list[str]]:
    policy = answer.headers["Content-Security-Policy"]
    directives = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in directives}


def test_every_answer_carries_the_security_headers_and_json_a_deny_all_policy(
    api: Api, store: Services
) -> None:
    app = _app(store)

    @app.get("/_crash", include_in_schema=False)
    def crash() -> None:
        raise RuntimeError("boom")

    client = TestClient(app)
    answers = {
        "ok": client.get("/healthz"),
        "404": client.get("/nowhere"),
        "405": client.delete("/healthz"),
        "401": client.get("/contacts/P1"),
        "413": client.post("/events", content=b"x" * (MAX_BODY + 1)),
        "422": client.put("/contacts/P1/toggles", headers=_bearer(api.keys["edit"]), content=b"{"),
        "500": client.get("/_crash"),
        "keyed": client.get("/contacts/P1", headers=_bearer(api.keys["view"])),
    }
    for name, answer in answers.items():
        assert {k: answer.headers.get(k) for k in COMMON} == COMMON, name
        csp = _csp(answer)
        assert csp["default-src"] == ["'none'"], name
        assert csp["frame-ancestors"] == ["'none'"], name
        assert "script-src" not in csp, name
    # Keyed answers (an organisation's data) are never stored by a browser or a proxy.
    assert answers["keyed"].headers["Cache-Control"] == "no-store"
    assert answers["422"].headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in answers["ok"].headers


def test_the_landing_page_may_style_itself_but_run_no_script(api: Api) -> None:
    page = api.client.get(MANDATE_COMPLETE_PATH)
    assert page.status_code == 200
    assert {k: page.headers.get(k) for k in COMMON} == COMMON
    csp = _csp(page)
    assert csp["default-src"] == ["'none'"]
    assert "script-src" not in csp  # falls back to 'none'
    assert csp["style-src"] == ["'unsafe-inline'"]  # its one <style> block
    assert csp["frame-ancestors"] == ["'none'"]
    assert page.headers["Cache-Control"] == "no-store"


def _inline_script_hashes(html: str) -> set[str]:
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    return {
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in scripts
    }


def test_the_docs_pages_policy_lets_exactly_their_own_scripts_run(api: Api) -> None:
    swagger = api.client.get("/docs")
    assert swagger.status_code == 200
    csp = _csp(swagger)
    hashes = _inline_script_hashes(swagger.text)
    assert hashes  # Swagger UI starts from one inline script
    assert set(csp["script-src"]) == {"https://cdn.jsdelivr.net", *hashes}  # no 'unsafe-inline'
    for src in re.findall(r'<script src="([^"]+)"', swagger.text):
        assert src.startswith("https://cdn.jsdelivr.net/")
    for href in re.findall(r'<link type="text/css" rel="stylesheet" href="([^"]+)"', swagger.text):
        assert href.startswith("https://cdn.jsdelivr.net/")
    assert "https://cdn.jsdelivr.net" in csp["style-src"]
    assert csp["connect-src"] == ["'self'"]  # the spec, and "Try it out"
    assert "'self'" in csp["img-src"]
    assert "data:" in csp["img-src"]  # Swagger UI's icons
    assert csp["frame-ancestors"] == ["'none'"]
    assert "validatorUrl" in swagger.text  # the spec is not sent to swagger.io's validator

    redoc = api.client.get("/redoc")
    assert redoc.status_code == 200
    csp = _csp(redoc)
    assert not _inline_script_hashes(redoc.text)
    assert csp["script-src"] == ["https://cdn.jsdelivr.net"]
    assert "blob:" in csp["worker-src"]  # Redoc's search runs in a worker made from a blob
    assert "https://fonts.googleapis.com" in csp["style-src"]
    assert csp["font-src"] == ["https://fonts.gstatic.com"]


# --- An unhandled error: 500 in the one shape, logged once, masked (defect 9a) --------------------


def test_an_unhandled_error_is_500_in_the_one_shape_and_logged_once_masked(
    store: Services, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(store)

    @app.get("/_crash/{who}", include_in_schema=False)
    def crash(who: str) -> None:
        raise RuntimeError(f"cannot reach {who} at +358401234567 secret-detail")

    caplog.set_level(logging.INFO)
    # raise_server_exceptions: an exception that escaped the app would be raised here (and, served
    # by uvicorn, logged a second time as "Exception in ASGI application").
    answer = TestClient(app, raise_server_exceptions=True).get("/_crash/aino@example.fi")
    assert answer.status_code == 500
    assert _shape(answer) == {"code": "internal_error", "message": "internal error", "details": []}
    assert "secret-detail" not in answer.text
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1
    (record,) = logged
    assert (record.name, record.levelno) == ("herald.api", logging.ERROR)
    line = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: cannot reach a***@example.fi at +358*******67" in line["exc"]
    assert "401234567" not in json.dumps(line)
    assert (line["method"], line["path"]) == ("GET", "/_crash/a***@example.fi")


# --- Control characters in a URL -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("/invoices/INV%001/history", "path"),
        ("/payments/PM%00/cancel", "path"),
        ("/contacts/P1%0A", "path"),
        ("/contacts/P1?reveal=%00", "query"),
        (f"{MANDATE_COMPLETE_PATH}?org=acme%1B", "query"),
    ],
)
def test_a_control_character_in_the_url_is_400_naming_where(api: Api, url: str, where: str) -> None:
    method = "POST" if url.endswith("/cancel") else "GET"
    answer = api.call(method, url, api.keys["admin"])
    assert answer.status_code == 400, answer.text
    error = _shape(answer)
    assert error["code"] == "bad_request"
    assert error["message"].startswith(f"the URL's {where} holds control character U+00")
    assert error["details"][0]["field"] == where


# --- The one error shape for every framework error on every route ---------------------------------

HOSTILE_SEGMENTS = ["x", "%00", "a" * 300, "%F0%9F%92%A9", "..%2F..%2Fhealthz"]
BODIES: list[bytes | None] = [None, b"\xff\xfe", b"[]", b'"s"', b'{"a": ', b"[" * 300 + b"]" * 300]
#: Routes the OpenAPI schema leaves out.
UNLISTED = {"/metrics": {"get"}, "/openapi.json": {"get"}, MANDATE_COMPLETE_PATH: {"get"}}


def _paths(template: str) -> list[str]:
    if "{" not in template:
        return [template]
    return [re.sub(r"{[^}]+}", segment, template) for segment in HOSTILE_SEGMENTS]


def test_no_route_answers_5xx_or_leaves_the_one_shape_for_bad_input(api: Api, store: Services) -> None:
    app = _app(store, api_auth_failures_per_minute=1_000_000)
    client = TestClient(app)
    routes = {path: set(ops) for path, ops in app.openapi()["paths"].items()} | UNLISTED
    admin, view = api.keys["admin"], api.keys["view"]
    wrong: list[str] = []
    tried = 0
    for template, methods in routes.items():
        for path in _paths(template):
            for method in sorted(m.upper() for m in methods | {"patch"}):  # PATCH: no route takes it
                # No key, a wrong one, a weak one; then every hostile body with the strongest key.
                bodies = BODIES if method in ("POST", "PUT", "PATCH") else [None]
                asks = [(None, b"[]"), (UNKNOWN_KEY, b"[]"), (view, b"[]"), *((admin, b) for b in bodies)]
                for key, body in asks:
                    headers = {"Content-Type": "application/json", **(_bearer(key) if key else {})}
                    answer = client.request(method, path, headers=headers, content=body)
                    tried += 1
                    where = f"{method} {path[:60]} key={key is not None} body={(body or b'')[:12]!r}"
                    if answer.status_code >= 500 and answer.status_code != 503:
                        wrong.append(f"{where}: {answer.status_code} {answer.text[:200]}")
                    elif path == "/readyz" and answer.status_code == 503:
                        # A probe's report, not an error: the documented readiness body, naming
                        # what did not answer (this test's broker may be elsewhere or down).
                        report = answer.json()
                        if report.get("status") != "unavailable" or not report.get("failed"):
                            wrong.append(f"{where}: 503 without the readiness report: {answer.text[:200]}")
                    elif answer.status_code >= 400:
                        try:
                            _shape(answer)
                        except (AssertionError, ValueError):
                            wrong.append(
                                f"{where}: {answer.status_code} not in the one shape: {answer.text[:200]}"
                            )
    assert tried > 400
    assert wrong == [], "\n".join(wrong)
