"""GoCardless handlers shared by the CLI and the HTTP app: full sync, webhooks, payment cancel."""
