"""What the CLI and the HTTP API both do: each command's rules and store calls, written once.

The CLI prints a refusal and exits; the API answers it in its error shape. Both see the same
exceptions: ``NotFound`` (404), ``Invalid`` (422) and ``Conflict`` (409).
"""

from __future__ import annotations


class Refused(Exception):
    """An operation refused; ``details`` lists each problem when there are several."""

    status = 400
    code = "refused"

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class NotFound(Refused):
    """Nothing by that id in the organisation (another organisation's ids included)."""

    status = 404
    code = "not_found"


class Invalid(Refused):
    """The request breaks a rule: an unknown kind, a template that does not check, ..."""

    status = 422
    code = "invalid"


class Conflict(Refused):
    """The state moved on since the caller looked (e.g. a preview that no longer matches)."""

    status = 409
    code = "conflict"
