"""herald's error tree.

Every failure a stage can meet is one of two kinds, decided here and nowhere
else: ``PermanentError`` (record it, never retry; a malformed message is
dead-lettered) or ``TransientError`` (retry with backoff).
"""

from __future__ import annotations


class HeraldError(Exception):
    """Base of every error herald raises on purpose."""


class ConfigurationError(HeraldError):
    """A setting is missing or wrong; names the ``HERALD_`` variable."""


class PermanentError(HeraldError):
    """Retrying cannot help: record the outcome and stop."""

    #: A short machine-readable reason recorded in history.
    reason = "permanent_error"


class MalformedMessage(PermanentError):
    """A message that reached a worker does not decode; it is dead-lettered."""

    reason = "malformed_message"


class TransientError(HeraldError):
    """May succeed later: retried with backoff."""


class ProviderError(HeraldError):
    """A provider refused or failed a request."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class PermanentProviderError(ProviderError, PermanentError):
    """The provider refused for good (bad number, opted out, ...)."""

    reason = "provider_rejected"


class TransientProviderError(ProviderError, TransientError):
    """The provider is busy or down; try again later.

    ``accepted_unknown`` is true when the request may have reached the provider
    (a read timeout): resending blindly could send twice.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        accepted_unknown: bool = False,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after
        self.accepted_unknown = accepted_unknown


class PublishError(HeraldError):
    """Publishing to RabbitMQ did not complete.

    ``confirmed`` lists the event ids RabbitMQ confirmed before the failure;
    every other event of the call must be treated as not published.
    """

    def __init__(self, message: str, *, confirmed: list[str] | None = None) -> None:
        super().__init__(message)
        self.confirmed: list[str] = confirmed or []


class BrokerUnavailable(PublishError):
    """RabbitMQ could not be reached, or the connection was lost."""


class MessageNacked(PublishError):
    """RabbitMQ refused (nacked) a message."""


class MessageUnroutable(PublishError):
    """RabbitMQ returned a message: no queue was bound for it."""


class InvalidEvent(HeraldError):
    """An event does not match the public contract; says what and where."""
