"""The HTTP app (FastAPI): provider callbacks now; the operator API grows here."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from infra.settings import Settings, get_settings
from producers.api.callbacks import twilio_router
from producers.api.payments import payments_router
from producers.api.webhooks import gocardless_router
from producers.gocardless.wiring import GoCardlessWiring


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, wired from settings (one composition root per process)."""
    settings = settings or get_settings()
    app = FastAPI(title="herald", version="0.1.0")
    app.include_router(twilio_router(settings))
    gocardless = GoCardlessWiring(settings)  # builds nothing until a request needs it
    app.include_router(gocardless_router(settings, gocardless))
    app.include_router(payments_router(gocardless))

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return app
