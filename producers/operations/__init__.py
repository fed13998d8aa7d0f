"""What the CLI and the HTTP API both do: each command's rules and store calls, written once.

A refused operation raises one of ``infra.errors.Refused``'s kinds (``NotFound``, ``Invalid``,
``Conflict``, …), which say nothing of HTTP or exit codes: the API answers them in its error
shape (``producers/api/errors.py``), the CLI prints them and exits (``producers/cli/console.py``).
"""
