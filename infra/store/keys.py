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

from infra.store.batches import IN_CHUNK, in_chunks


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


# -- statements built once -------------------------------------------------------------------------
# Building a statement costs more than running it (about 0.16 ms of SQLAlchemy's coercions and
# cache-key generation per SELECT, against 0.07 ms to run one built before): on the hot path a
# single event pays that for every statement of every stage. So the hot statements are built once
# (at import, or once per shape) with named parameters: ``ids_where`` for an ``IN`` list,
# ``pairs_where`` for a two-column key, whose shape is its number of terms (of first values).

#: The parameter name of an ``ids_where`` list.
IDS = "k_ids"


def ids_where(column: ColumnElement[Any]) -> Any:
    """``column IN :k_ids``, for a statement built once; execute it with ``{IDS: values}``."""
    return column.in_(bindparam(IDS, expanding=True, type_=column.type))


def pairs_where(first: ColumnElement[Any], second: ColumnElement[Any], terms: int) -> Any:
    """``pairs_in`` for a statement built once per number of ``terms``: ``first = :k_first_i AND
    second IN :k_seconds_i`` for each ``i``, or-ed; execute it with ``pair_params``'s sets."""
    conditions = [
        and_(
            first == bindparam(f"k_first_{i}", type_=first.type),
            second.in_(bindparam(f"k_seconds_{i}", expanding=True, type_=second.type)),
        )
        for i in range(terms)
    ]
    return conditions[0] if terms == 1 else or_(*conditions)


def pair_params(pairs: Iterable[tuple[Any, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """For ``pairs`` (repeats dropped), the executions of a ``pairs_where`` statement: its number
    of terms and its parameters, each holding at most ``IN_CHUNK`` second values."""
    groups: dict[Any, dict[Any, None]] = {}
    for a, b in pairs:
        groups.setdefault(a, {})[b] = None
    out: list[tuple[int, dict[str, Any]]] = []
    params: dict[str, Any] = {}
    size = 0
    for a, bs in groups.items():
        for chunk in in_chunks(list(bs)):
            if size + len(chunk) > IN_CHUNK and params:
                out.append((len(params) // 2, params))
                params, size = {}, 0
            i = len(params) // 2
            params[f"k_first_{i}"] = a
            params[f"k_seconds_{i}"] = chunk
            size += len(chunk)
    if params:
        out.append((len(params) // 2, params))
    return out
