"""Statuses back to the upstream: signed webhooks and the status exchange, fed from the status outbox."""
