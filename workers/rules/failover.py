"""Which SMS provider a notification goes to, and when it may move to another one.

An organisation lists its providers in order (``herald orgs set --sms-providers twilio,vonage``);
the default is Twilio alone. The rules:

1. A notification goes to the first provider of the list whose breaker admits it.
2. It moves to the next provider only after an **unambiguous** failure at the one it tried: the
   provider refused before sending or answered 5xx with no message created (a transient failure,
   certainly not sent), or its circuit is open. The next try starts from the provider after the one
   that failed, round the list.
3. An **ambiguous** attempt (a timeout after the request went out: the provider may have the
   message) stays with its provider: it is reconciled there, and never sent elsewhere until that
   provider says it has no such message.
4. A **permanent** refusal (an invalid number such as Twilio's 21211, an opted-out recipient) is
   about the recipient, not the provider: it never fails over.

Pure: the caller reads the list, the breakers and the notification's last provider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

from infra.errors import PermanentProviderError, TransientProviderError
from workers.rules.breaker import Signal

#: The providers of an organisation that never chose: Twilio alone, as before failover existed.
DEFAULT_PROVIDERS: tuple[str, ...] = ("twilio",)


class Failure(StrEnum):
    """What a failed send means for the notification's next provider."""

    UNAMBIGUOUS = "unambiguous"  # certainly not sent: may move to the next provider
    AMBIGUOUS = "ambiguous"  # may have been sent: reconcile at the same provider first
    PERMANENT = "permanent"  # the recipient's problem: no provider can help, never fail over


def failure_of(exc: BaseException) -> Failure:
    """Sort a provider's error by what it allows: a permanent refusal, an attempt that may have
    reached the provider (``accepted_unknown``), or one that certainly did not."""
    if isinstance(exc, PermanentProviderError):
        return Failure.PERMANENT
    if isinstance(exc, TransientProviderError) and not exc.accepted_unknown:
        return Failure.UNAMBIGUOUS
    return Failure.AMBIGUOUS  # a timeout after the request went out, or anything unforeseen


def signal_of(exc: BaseException | None) -> Signal:
    """What a send's outcome tells the provider's breaker: success (``None``: accepted),
    failure (transient, timeouts included), neutral (a permanent refusal of one message)."""
    if exc is None:
        return Signal.SUCCESS
    if isinstance(exc, PermanentProviderError):
        return Signal.NEUTRAL
    return Signal.FAILURE


def order(providers: Sequence[str], failed_at: str | None) -> list[str]:
    """The providers in the order to try them: the organisation's order, or, after an
    unambiguous failure at ``failed_at``, starting from the one after it, round the list."""
    names = list(providers) or list(DEFAULT_PROVIDERS)
    if failed_at not in names:
        return names
    i = names.index(failed_at) + 1
    return names[i:] + names[:i]


def choose(providers: Sequence[str], failed_at: str | None, admits: Callable[[str], bool]) -> str | None:
    """The provider to send to now: the first, in ``order``, that ``admits`` (its breaker lets a
    send through; asked in turn, so a half-open breaker counts only the trial it gives). ``None``:
    every circuit is open, come back when one admits trials."""
    for name in order(providers, failed_at):
        if admits(name):
            return name
    return None


def may_move(failure: Failure) -> bool:
    """Whether the next try of a notification may go to another provider."""
    return failure == Failure.UNAMBIGUOUS


def sender_for(provider: str, configured: str | None, rendered: str | None, default_from: str | None) -> str:
    """The sender of an SMS at ``provider``: the organisation's own sender for that provider;
    else, at Twilio, the one chosen at render (the organisation's number or name, else
    ``HERALD_TWILIO_FROM``: as before failover); else the provider's default sender, else the
    rendered one."""
    if configured:
        return configured
    if provider == DEFAULT_PROVIDERS[0]:
        return str(rendered or default_from or "")
    return str(default_from or rendered or "")


def rate_key(provider: str, sender: str) -> str:
    """The key of a sender's shared rate-limit timeline: Twilio's senders keep their own number
    or name (as before failover); another provider's are its own timelines."""
    return sender if provider == DEFAULT_PROVIDERS[0] else f"{provider}:{sender}"
