"""Which failures are retried: the single place that says permanent or transient."""

from __future__ import annotations

import json
from collections.abc import Callable

from pydantic import ValidationError

from infra.errors import PermanentError


def is_permanent(exc: BaseException) -> bool:
    """Permanent: retrying cannot help (malformed input, a provider's final no).

    Everything else, including errors we did not foresee, is transient and
    retried with backoff until the retry budget runs out.
    """
    return isinstance(exc, PermanentError | ValidationError | json.JSONDecodeError | UnicodeDecodeError)


def retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """A dramatiq ``retry_when`` predicate with this retry budget."""

    def should_retry(retries: int, exc: BaseException) -> bool:
        return not is_permanent(exc) and retries < max_retries

    return should_retry
