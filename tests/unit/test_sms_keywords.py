"""SMS keywords: what an inbound message asks."""

from __future__ import annotations

import pytest

from workers.rules.sms_keywords import Keyword, parse_keyword


@pytest.mark.parametrize(
    "body", ["STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "Cancel", "END", "quit\n"]
)
def test_the_stop_words_opt_out_in_any_case_with_spaces(body: str) -> None:
    assert parse_keyword(body) == Keyword.STOP


@pytest.mark.parametrize("body", ["START", "yes", " Unstop\t"])
def test_the_start_words_opt_back_in(body: str) -> None:
    assert parse_keyword(body) == Keyword.START


@pytest.mark.parametrize("body", ["HELP", "help ", "Info"])
def test_help_asks_for_help(body: str) -> None:
    assert parse_keyword(body) == Keyword.HELP


@pytest.mark.parametrize(
    "body", ["", None, "stop it please", "STOP!", "thanks", "S T O P", "\x00STOP", "\uff33\uff34\uff2f\uff30"]
)
def test_anything_else_is_an_ordinary_message(body: str | None) -> None:
    assert parse_keyword(body) == Keyword.NONE


def test_twilios_opt_out_type_wins_over_the_text() -> None:
    assert parse_keyword("arrêtez", "STOP") == Keyword.STOP
    assert parse_keyword("STOP", "START") == Keyword.START
    assert parse_keyword("hi", "help") == Keyword.HELP
    assert parse_keyword("STOP", "something-new") == Keyword.STOP  # an unknown type: read the text
