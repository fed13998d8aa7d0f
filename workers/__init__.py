"""herald's worker stages: one module per stage, each a plain function ``(services, body)``.

``workers.registry`` declares them as dramatiq actors on a given broker, at start-up
(``workers.start``); importing a stage module declares nothing. The pure rules live in
``workers.rules`` and import no broker or store.
"""
