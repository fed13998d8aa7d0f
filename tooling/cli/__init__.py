"""The tooling's ``herald`` commands (``sandbox``, ``broker``, ``demo``), found by the runtime CLI
through the ``herald.commands`` entry points."""
