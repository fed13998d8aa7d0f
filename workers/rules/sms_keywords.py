"""SMS keywords (pure): what an inbound message asks, as carriers and Twilio read it.

Twilio's standard keywords: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT opt out; START, YES,
UNSTOP opt back in; HELP (and INFO) ask for help. The whole message is the keyword, in any case,
with any surrounding whitespace ("Stop " is a stop; "stop it please" is just a message). Twilio's
``OptOutType`` field (``STOP``, ``START``, ``HELP``), where present, is what Twilio itself did
with the message and wins over our reading of the text.
"""

from __future__ import annotations

from enum import StrEnum


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    NONE = "none"


OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "YES", "UNSTOP"})
HELP = frozenset({"HELP", "INFO"})
_OPT_OUT_TYPE = {"STOP": Keyword.STOP, "START": Keyword.START, "HELP": Keyword.HELP}


def parse_keyword(body: str | None, opt_out_type: str | None = None) -> Keyword:
    """What an inbound SMS asks: stop, start, help, or none (an ordinary reply)."""
    if opt_out_type:
        typed = _OPT_OUT_TYPE.get(opt_out_type.strip().upper())
        if typed is not None:
            return typed
    word = (body or "").strip().upper()
    if word in OPT_OUT:
        return Keyword.STOP
    if word in OPT_IN:
        return Keyword.START
    if word in HELP:
        return Keyword.HELP
    return Keyword.NONE
