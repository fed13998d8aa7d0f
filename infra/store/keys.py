"""Looking rows up by a two-column key, set-based, in a form every database serves from its index.

``tuple_(a, b).in_(pairs)`` reads well, but SQLite answers a row-value ``IN`` list by scanning the
whole table (``SCAN events`` in its query plan): a batch's look-up would cost as much as the table
is large. ``pairs_in`` writes the same condition as ``a = ? AND b IN (…)``, one term per value of
``a`` (a batch is mostly one organisation's), which both SQLite and PostgreSQL answer with a
search of the index on ``(a, b)``; its ``IN`` list is one expanding parameter, so the statement is
compiled once per number of terms, not once per batch.

``among`` is ``column IN values`` built the cheap way: ``column.in_(a list)`` coerces every value
into an expression of its own before the statement is even looked up in the compiled cache, which
costs more per batch than running the statement; one expanding parameter holding the list does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, false, or_


def among(column: ColumnElement[Any], values: Iterable[Any]) -> Any:
    """The condition ``column IN values``, the values bound as one expanding parameter."""
    return column.in_(bindparam(None, list(values), expanding=True, type_=column.type))


def pairs_in(first: ColumnElement[Any], second: ColumnElement[Any], pairs: Iterable[tuple[Any, Any]]) -> Any:
    """The condition ``(first, second) IN pairs`` (false for no pairs), as a search of the index on
    ``(first, second)``."""
    groups: dict[Any, list[Any]] = {}
    for a, b in pairs:
        groups.setdefault(a, []).append(b)
    terms = [and_(first == a, among(second, bs)) for a, bs in groups.items()]
    if not terms:
        return false()
    return terms[0] if len(terms) == 1 else or_(*terms)
