"""The HTTP app (FastAPI): provider callbacks now; the operator API grows here."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from infra.settings import Settings, get_settings
from producers.api.callbacks import twilio_router


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, wired from settings (one composition root per process)."""
    settings = settings or get_settings()
    app = FastAPI(title="herald", version="0.1.0")
    app.include_router(twilio_router(settings))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app
