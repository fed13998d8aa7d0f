"""herald's worker stages: one module per stage, each importing ``infra.broker`` first.

The pure rules live in ``workers.rules`` and import no broker or store.
"""
