"""Signed GoCardless webhooks for the sandbox: ``{"events": [...]}`` POSTed from one thread.

``Webhook-Signature`` is the hex HMAC-SHA256 of the raw body keyed with the webhook
secret, as GoCardless signs them. A delivery answered with a non-2xx status (or not
answered) is retried a few times with the same body and webhook id, then dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tooling.sandboxes.gocardless.state import new_id

log = logging.getLogger("herald.sandbox.gocardless")


def sign(body: bytes, secret: str) -> str:
    """The ``Webhook-Signature`` GoCardless sends for ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Delivery:
    """One POST of a webhook: what was sent where, and how it was answered."""

    webhook_id: str
    url: str
    event_ids: list[str]
    attempt: int
    status: int | None = None
    error: str | None = None


@dataclass
class _Job:
    url: str
    body: bytes
    webhook_id: str
    event_ids: list[str] = field(default_factory=list)


class WebhookSender:
    """Queues webhooks and POSTs them in order from one daemon thread."""

    def __init__(
        self, secret: str, attempts: int = 3, retry_seconds: float = 0.2, timeout: float = 2.0
    ) -> None:
        self.secret, self.attempts, self.retry_seconds, self.timeout = (
            secret,
            attempts,
            retry_seconds,
            timeout,
        )
        #: Where webhooks go; ``None`` records events without sending them.
        self.url: str | None = None
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping, self._jobs = threading.Event(), queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="gocardless-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop at once; webhooks not yet delivered are dropped."""
        self._stopping.set()
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)  # one POST in flight is bounded by its timeout
            self._thread = None

    def send(self, events: list[dict[str, Any]], times: int = 1) -> str | None:
        """Queue one webhook carrying ``events`` (``times`` identical deliveries); its id."""
        if not self.url or not events:
            return None
        webhook_id = new_id("WB")
        body = json.dumps({"events": events, "meta": {"webhook_id": webhook_id}}).encode()
        for _ in range(times):
            self._jobs.put(_Job(self.url, body, webhook_id, [e["id"] for e in events]))
        return webhook_id

    def deliveries(self) -> list[dict[str, Any]]:
        """Every POST so far (retries included), oldest first."""
        with self._lock:
            return [asdict(d) for d in self._deliveries]

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            for attempt in range(1, self.attempts + 1):
                if self._stopping.is_set() or self._post(job, attempt):
                    break
                if attempt < self.attempts and self._stopping.wait(self.retry_seconds * attempt):
                    return
            else:
                log.warning("webhook %s dropped after %d attempts", job.webhook_id, self.attempts)

    def _post(self, job: _Job, attempt: int) -> bool:
        delivery = Delivery(job.webhook_id, job.url, job.event_ids, attempt)
        try:
            if urlsplit(job.url).scheme not in ("http", "https"):
                raise ValueError(f"not an http(s) URL: {job.url}")
            request = urllib.request.Request(  # noqa: S310 - scheme checked above
                job.url,
                data=job.body,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Webhook-Signature": sign(job.body, self.secret),
                    "User-Agent": "gocardless-webhook-service/1.1",
                    "Origin": "https://api.gocardless.com",
                },
            )
            # urlopen raises HTTPError for any non-2xx answer.
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
                delivery.status = response.status
        except urllib.error.HTTPError as exc:
            delivery.status, delivery.error = exc.code, str(exc)
        except Exception as exc:  # refused, timed out, bad URL: retried like a non-2xx
            delivery.error = str(exc)
        with self._lock:
            self._deliveries.append(delivery)
        ok = delivery.error is None
        log.log(
            logging.INFO if ok else logging.WARNING,
            "webhook %s attempt %d: %s",
            job.webhook_id,
            attempt,
            delivery.status if ok else delivery.error,
        )
        return ok
