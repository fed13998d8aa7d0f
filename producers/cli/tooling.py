"""The tooling's commands (``herald sandbox|broker|demo``), found through entry points.

The runtime never imports the ``tooling`` package: the commands come from the ``herald.commands``
entry points of whatever is installed, and where the tooling's extra is missing each command still
answers, saying which extra it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

import typer

from producers.cli.console import err

#: The tooling's commands and what each is for, named even when the extra is missing.
TOOLING_COMMANDS = {
    "sandbox": "Local provider-compatible sandboxes (Twilio, SMTP, GoCardless).",
    "broker": "Start, stop or check a local RabbitMQ node.",
    "demo": "Run the whole pipeline on demo data.",
}
EXTRA_HINT = "pip install 'herald[sandbox]'"


def add_tooling_commands(app: typer.Typer) -> None:
    """Add each tooling command: the installed one, or a stand-in that names the missing extra."""
    found = {ep.name: ep for ep in entry_points(group="herald.commands")}
    for name, help_text in TOOLING_COMMANDS.items():
        command = None
        if name in found:
            try:
                command = found[name].load()
            except ImportError as exc:  # the package is there, its extra's dependencies are not
                app.command(name, help=help_text)(_missing(name, str(exc)))
                continue
        if command is None:
            app.command(name, help=help_text)(_missing(name, "the tooling is not installed"))
        elif isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:
            app.command(name)(command)


def _missing(name: str, why: str) -> Callable[[], None]:
    def missing() -> None:
        err.print(f"error: herald {name} is tooling ({why}); install it with {EXTRA_HINT}", markup=False)
        raise typer.Exit(2)

    return missing
