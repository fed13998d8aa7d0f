"""The HTTP app (FastAPI): provider callbacks now; the operator API grows here."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from infra.settings import Settings, get_settings
from producers.api.auth import payment_of_caller
from producers.api.callbacks import twilio_router
from producers.api.docs import install_docs
from producers.api.errors import UnhandledErrors
from producers.api.operator import install_operator_api
from producers.api.ops import ops_router
from producers.api.pages import pages_router
from producers.api.payments import payments_router
from producers.api.security_headers import SecurityHeaders
from producers.api.url_check import UrlCheck
from producers.api.webhooks import gocardless_router
from producers.gocardless.wiring import GoCardlessWiring


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, wired from settings (one composition root per process)."""
    settings = settings or get_settings()
    # The docs are served by install_docs, with their exposure and their own policy.
    app = FastAPI(title="herald", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(twilio_router(settings))
    gocardless = GoCardlessWiring(settings)  # builds nothing until a request needs it
    app.include_router(gocardless_router(settings, gocardless))
    # A send key of the payment's organisation (producers/api/auth.py says why send, not edit).
    app.include_router(payments_router(gocardless), dependencies=[Depends(payment_of_caller)])
    app.include_router(ops_router(settings))  # /readyz, /metrics
    app.include_router(pages_router(settings))  # public: the mandate-setup landing page
    install_operator_api(app, settings)  # keyed operator endpoints, body limit, one error shape
    install_docs(app, settings.api_docs_exposure)  # /openapi.json, /docs, /redoc

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
    # Outermost last: every answer (a 413 from the body limit, a 500) gets the headers.
    app.add_middleware(UrlCheck)
    app.add_middleware(UnhandledErrors)
    app.add_middleware(SecurityHeaders)
    return app
