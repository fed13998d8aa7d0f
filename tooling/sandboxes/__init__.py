"""Provider-compatible sandboxes (Twilio, SMTP, GoCardless): they talk HTTP/SMTP exactly like the
providers, so the official clients work against them unchanged, for demos and tests."""
