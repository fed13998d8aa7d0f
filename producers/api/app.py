"""The HTTP app (FastAPI): provider callbacks now; the operator API grows here."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse

from infra.bootstrap import BootOnce, Services
from infra.broker import Emitter, EmitterOnce
from infra.settings import Settings
from producers.api.auth import payment_of_caller
from producers.api.callbacks import twilio_router
from producers.api.docs import install_docs
from producers.api.errors import UnhandledErrors
from producers.api.inbound_sms import inbound_router
from producers.api.operator import install_operator_api
from producers.api.ops import ops_router
from producers.api.pages import pages_router
from producers.api.payments import payments_router
from producers.api.preference_page import preferences_router
from producers.api.security_headers import SecurityHeaders
from producers.api.url_check import UrlCheck
from producers.api.vonage_receipts import vonage_router
from producers.api.webhooks import gocardless_router
from producers.gocardless.wiring import GoCardlessWiring


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """The app, wired from ``settings`` (the api process's composition root).

    The store and the emitter are ``services``'s when given (a test's, booted with its fakes), else
    the app's own, each built from ``settings`` on the first request that needs it (not at import,
    not before the server starts), once.
    """
    booted: Callable[[], Services]
    emitter: Callable[[], Emitter]
    if services is not None:
        booted, emitter = (lambda: services), (lambda: services.emitter)
    else:
        # The emitter apart from the services: a status callback is queued while the store is away.
        emitter = EmitterOnce(settings)
        booted = BootOnce(settings, emitter)
    # The docs are served by install_docs, with their exposure and their own policy.
    app = FastAPI(title="herald", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(twilio_router(settings, booted, emitter))
    app.include_router(vonage_router(settings, booted, emitter))  # Vonage's delivery receipts
    app.include_router(inbound_router(settings, booted))  # SMS keywords (STOP, START, HELP)
    gocardless = GoCardlessWiring(settings, booted)  # builds nothing until a request needs it
    app.include_router(gocardless_router(settings, gocardless))
    # A send key of the payment's organisation (producers/api/auth.py says why send, not edit).
    app.include_router(payments_router(gocardless), dependencies=[Depends(payment_of_caller)])
    app.include_router(ops_router(settings))  # /readyz, /metrics
    app.include_router(pages_router(settings, booted))  # public: the mandate-setup landing page
    app.include_router(preferences_router(settings, booted))  # public: the signed link is the key
    install_operator_api(app, settings, booted)  # keyed operator endpoints, body limit, one error shape
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
