"""``HERALD_SMTP_RELAYS``: fallback relays as ``host:port``, in order; hostile values refused
naming the entry."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.db import make_engine


def test_relays_are_read_in_order_and_named_after_the_first() -> None:
    settings = Settings(smtp_relays="mx2.example:25, mx3.example:587")  # type: ignore[call-arg]
    assert settings.smtp_relay_addresses == [("mx2.example", 25), ("mx3.example", 587)]
    services = Services(settings=settings, engine=make_engine("sqlite://"))
    assert services.email_relays() == ["smtp", "smtp-2", "smtp-3"]
    assert services.email_relay("smtp-4") is None


def test_no_relays_by_default() -> None:
    assert Settings().smtp_relay_addresses == []  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("mx2.example", "relay #1 'mx2.example': expected host:port"),
        ("mx2.example:25,mx3.example:0", "relay #2"),
        ("mx2.example:99999", "expected host:port"),
        (":25", "expected host:port"),
        ("mx2.example:2 5", "expected host:port"),
        ("mx\x1b[2J.example:25", "not a host name"),
        ("x" * 300 + ":25", "not a host name"),
        (",".join(["mx.example:25"] * 6), "at most 5"),
    ],
)
def test_hostile_relays_are_refused_naming_the_entry(value: str, says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(smtp_relays=value)  # type: ignore[call-arg]
    assert says in str(refused.value)
    assert "smtp_relays" in str(refused.value)
