"""Operator endpoints of the HTTP app: ``/readyz`` and Prometheus ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from infra.metrics_http import exposition_registry
from infra.readiness import Check, default_checks, run_checks
from infra.settings import Settings
from producers.api.auth import caller


def ops_router(settings: Settings, checks: dict[str, Check] | None = None) -> APIRouter:
    """``/readyz`` (200 when the broker and the database answer, else 503 naming what failed; HEAD
    too) and ``/metrics`` (unless ``HERALD_METRICS_PORT=0``), exposed as
    ``HERALD_API_METRICS_EXPOSURE`` says: ``public``, ``key`` (any valid API key) or ``off`` (404)."""
    router = APIRouter(tags=["operations"])
    checks = checks if checks is not None else default_checks(settings)
    timeout = settings.readiness_timeout_seconds

    @router.get("/readyz")
    def readyz() -> JSONResponse:
        results = run_checks(checks, timeout)
        failed = [r.name for r in results if not r.ok]
        body = {
            "status": "ok" if not failed else "unavailable",
            "failed": failed,
            "checks": {r.name: r.as_dict() for r in results},
        }
        return JSONResponse(body, status_code=503 if failed else 200)

    # Probes may ask with HEAD (the schema shows GET only: one operation per path and method).
    router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)

    exposure = settings.api_metrics_exposure
    if settings.metrics_port != 0 and exposure != "off":
        guard = [Depends(caller)] if exposure == "key" else []

        # Prometheus text, not the JSON API: left out of the schema.
        @router.api_route("/metrics", methods=["GET", "HEAD"], include_in_schema=False, dependencies=guard)
        def prometheus_metrics() -> Response:
            return Response(generate_latest(exposition_registry(settings)), media_type=CONTENT_TYPE_LATEST)

    return router
