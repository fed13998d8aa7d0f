"""Which failures are retried, and how: the single place that says permanent or transient.

Two layers. In-call (tenacity): a transient provider answer is tried again a few
times within the same message, waiting the provider's ``Retry-After`` or a short
jittered backoff. Message-level (dramatiq): what is still failing goes back to
the queue with exponential backoff and jitter until the send deadline (see
``workers.sending``). A permanent error is never retried.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import dramatiq
from jinja2 import TemplateError
from pydantic import ValidationError
from tenacity import RetryCallState, Retrying, stop_after_attempt, wait_exponential_jitter

from infra.errors import PermanentError, TransientProviderError


def is_permanent(exc: BaseException) -> bool:
    """Permanent: retrying cannot help (malformed input, a provider's final no).

    Everything else, including errors we did not foresee, is transient and
    retried with backoff until the retry budget runs out.
    """
    return isinstance(exc, PermanentError | ValidationError | json.JSONDecodeError | UnicodeDecodeError)


def is_permanent_render_error(exc: BaseException) -> bool:
    """Whether an error raised while rendering a notification is final.

    Rendering is pure (the stored event, the templates, the limits): what fails once fails the
    same way on every retry. So a template problem, a limit, a sandbox refusal, a value that
    cannot be formatted (``decimal.InvalidOperation`` on ``1E+400``), a type or value error inside
    a template, or a stored event that no longer validates, is permanent: recorded ``failed``
    with its reason, never retried. Only the I/O around rendering (the store, the broker) is
    transient, and so are ``MemoryError`` and what is not an error of the render itself.
    Callers apply it to the pure render only, never to a store call.
    """
    if isinstance(exc, MemoryError | OSError):
        return False
    return is_permanent(exc) or isinstance(
        exc, TemplateError | ArithmeticError | ValueError | TypeError | LookupError | RecursionError
    )


def retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """A dramatiq ``retry_when`` predicate with this retry budget.

    ``dramatiq.Retry`` is raised only by senders that keep their own deadline
    (``workers.sending``): it is always honoured, with the delay it names.
    """

    def should_retry(retries: int, exc: BaseException) -> bool:
        if isinstance(exc, dramatiq.Retry):
            return True
        return not is_permanent(exc) and retries < max_retries

    return should_retry


def retry_in_call(exc: BaseException, max_wait: float) -> bool:
    """Whether a failed provider call may be tried again at once, within the same message.

    Only a transient answer that certainly did not send (not ``accepted_unknown``),
    and only when the provider does not ask us to wait longer than ``max_wait``.
    """
    if not isinstance(exc, TransientProviderError) or exc.accepted_unknown:
        return False
    return exc.retry_after is None or exc.retry_after <= max_wait


_jitter = wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2)


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    retry_after = getattr(exc, "retry_after", None)
    return float(retry_after) if retry_after is not None else float(_jitter(state))


def in_call_retrying(
    attempts: int,
    max_wait: float,
    before_sleep: Callable[[BaseException, float], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Retrying:
    """A tenacity loop for one provider call: ``attempts`` tries at most, waiting the provider's
    ``Retry-After`` (up to ``max_wait``) or 0.2-2 s with jitter; ``before_sleep(exc, seconds)``
    is told of each retry (to log it). The last error is re-raised as it is."""

    def _before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None:
            before_sleep(exc, state.next_action.sleep if state.next_action else 0.0)

    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=_wait,
        retry=lambda state: bool(
            state.outcome and state.outcome.failed and retry_in_call(state.outcome.exception(), max_wait)  # type: ignore[arg-type]
        ),
        before_sleep=_before_sleep,
        sleep=sleep,
        reraise=True,
    )
