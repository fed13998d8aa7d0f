"""Development and demo tooling, not runtime code: provider-compatible sandboxes, local RabbitMQ and
PostgreSQL launchers, the demo, and the ``herald sandbox|broker|demo`` commands. Installed with the
``herald[sandbox]`` extra; no runtime module imports it (``tests/unit/test_layers.py``)."""
