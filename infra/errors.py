"""herald's error tree: every exception herald raises on purpose is a ``HeraldError``.

::

    HeraldError
     ├── ConfigurationError          a setting is missing or wrong
     ├── PermanentError              retrying cannot help: record it and stop
     │    └── MalformedMessage       a message a worker cannot decode: dead-lettered
     ├── TransientError              may succeed later: retried with backoff
     ├── ProviderError               a provider refused or failed a request
     │    ├── PermanentProviderError   (and a PermanentError)
     │    └── TransientProviderError   (and a TransientError)
     ├── PublishError                RabbitMQ did not confirm a publish
     │    ├── BrokerUnavailable
     │    ├── MessageNacked
     │    └── MessageUnroutable
     ├── InvalidInput                input refused at the door, before anything is done with it
     │    ├── InvalidEvent           an event that breaks the public contract
     │    └── WebhookRejected        a GoCardless webhook body with no list of events
     └── Refused                     an operation refused (the CLI and the HTTP API alike)
          ├── NotFound
          ├── Invalid
          └── Conflict
               ├── IntegrationInactive
               └── NotCancellable

Whether a stage's failure is permanent or transient is decided here and nowhere else. Nothing here
knows HTTP or exit codes: the API maps these to statuses at its edge (``producers/api/errors.py``)
and the CLI to exit codes (``producers/cli/console.py``).

A leaf that carries a type of its own module derives from this tree where that type lives: the
adapters' (``GoCardlessRefused``, ``UnsendableEmail``, ``CheckFailed``), the template rules'
(``TemplateInvalid``, ``TemplateRenderError``, …), the directory import's (``JsonRejected``,
``HeaderError``) and the API's own answer (``ApiError``). This module imports nothing, so every
layer may import it, ``schemas`` included.
"""

from __future__ import annotations


class HeraldError(Exception):
    """Base of every error herald raises on purpose."""

    @property
    def message(self) -> str:
        """What went wrong, in one line for the person who reads it."""
        return str(self)


class ConfigurationError(HeraldError):
    """A setting is missing or wrong; names the ``HERALD_`` variable."""


# --- Failures of a stage: permanent or transient ---------------------------------------------


class PermanentError(HeraldError):
    """Retrying cannot help: record the outcome and stop; never retried."""

    #: A short machine-readable reason recorded in history.
    reason = "permanent_error"


class MalformedMessage(PermanentError):
    """A message that reached a worker does not decode. Permanent: it is dead-lettered."""

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
    """The provider refused for good (bad number, opted out, ...). Permanent."""

    reason = "provider_rejected"


class TransientProviderError(ProviderError, TransientError):
    """The provider is busy or down; try again later. Transient.

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


# --- Publishing ---------------------------------------------------------------------------------


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


# --- Input refused at the door ------------------------------------------------------------------


class InvalidInput(HeraldError):
    """Input refused before anything is done with it. Permanent for that input: the same bytes
    are refused the same way again. ``reason`` says what is wrong and where, in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidEvent(InvalidInput):
    """An event does not match the public contract (not UTF-8, not JSON, too large or deep, an
    unknown ``type``, a missing or invalid field); ``reason`` names the field."""


class WebhookRejected(InvalidInput):
    """A GoCardless webhook body that holds no list of events (the events in a list are checked
    one by one, and rejected alone)."""


# --- Operations refused -------------------------------------------------------------------------


class Refused(HeraldError):
    """An operation refused, for the CLI and the HTTP API alike; ``details`` lists each problem
    when there are several."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details: list[str] = details or []


class NotFound(Refused):
    """Nothing by that id in the organisation (another organisation's ids included)."""


class Invalid(Refused):
    """The request breaks a rule: an unknown kind, a template that does not check, ..."""


class Conflict(Refused):
    """The state does not allow it now, or moved on since the caller looked (e.g. a preview
    that no longer matches)."""


class IntegrationInactive(Conflict):
    """The integration is disconnected: herald does nothing for it."""


class NotCancellable(Conflict):
    """A payment past ``pending_submission``: GoCardless no longer cancels it."""
