"""The GoCardless sandbox: the Pro API's resources (``state``), its HTTP server (``server``), the test
controls (``admin``) and signed webhooks (``webhooks``)."""

from tooling.sandboxes.gocardless.server import ApiFailure, GoCardlessConfig, GoCardlessSandbox, serve, sign

__all__ = ["ApiFailure", "GoCardlessConfig", "GoCardlessSandbox", "serve", "sign"]
