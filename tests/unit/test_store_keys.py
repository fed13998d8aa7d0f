"""The two-column key look-ups of ``infra.store.keys``: statements built once per shape, and the
parameter sets that feed them (pure: the statements are compiled, never run)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.dialects import sqlite

from infra.store.batches import IN_CHUNK
from infra.store.keys import IDS, ids_where, pair_params, pairs_where

table = Table("t", MetaData(), Column("a", String), Column("b", String))


def test_one_organisation_is_one_execution_of_a_one_term_statement() -> None:
    assert pair_params([("acme", "c1"), ("acme", "c2"), ("acme", "c1")]) == [
        (1, {"k_first_0": "acme", "k_seconds_0": ["c1", "c2"]})
    ]


def test_several_organisations_share_one_execution_with_a_term_each() -> None:
    [(terms, params)] = pair_params([("acme", "c1"), ("globex", "c9"), ("acme", "c2")])
    assert terms == 2
    assert params == {
        "k_first_0": "acme",
        "k_seconds_0": ["c1", "c2"],
        "k_first_1": "globex",
        "k_seconds_1": ["c9"],
    }


def test_no_pairs_no_execution() -> None:
    assert pair_params([]) == []


def test_no_execution_binds_more_than_a_chunk_of_values() -> None:
    pairs = [("acme", f"c{n}") for n in range(IN_CHUNK + 10)] + [("globex", "c1")]
    executions = pair_params(pairs)
    assert [sum(len(v) for k, v in p.items() if k.startswith("k_seconds")) for _, p in executions] == [
        IN_CHUNK,
        11,
    ]


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.text(max_size=3)), max_size=1200))
def test_the_executions_cover_every_pair_once(pairs: list[tuple[str, str]]) -> None:
    seen = []
    for terms, params in pair_params(pairs):
        assert len(params) == 2 * terms
        for i in range(terms):
            seen += [(params[f"k_first_{i}"], b) for b in params[f"k_seconds_{i}"]]
    assert sorted(seen) == sorted(set(pairs))


def test_the_statement_is_the_index_search_it_always_was() -> None:
    sql = str(select(table.c.a).where(pairs_where(table.c.a, table.c.b, 2)).compile(dialect=sqlite.dialect()))
    assert "t.a = ? AND t.b IN (__[POSTCOMPILE_k_seconds_0])" in sql
    assert " OR " in sql
    assert str(select(table.c.a).where(ids_where(table.c.a)).compile()).endswith(
        f"IN (__[POSTCOMPILE_{IDS}])"
    )
