"""``herald templates set`` against careless and hostile files (issue 13): each refusal names the
template and the line, exits 1, and saves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.settings import Settings
from infra.store.templates import load_overrides
from producers.cli import app


def _set(settings: Settings, path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["templates", "set", "invoice", "sms", "fi", str(path), "--org", "acme", *extra], obj=settings
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("Lasku\n{{ 'y' * 100000001 }}", "error: invoice.sms.fi line 2: "),
        (
            "Lasku\n{% set c = contact %}{{ c.phone }}",
            "error: invoice.sms.fi line 2: 'contact' can only be used",
        ),
        (
            "Lasku {{ invoice.number }}\n" + "x" * 20_000,
            "error: invoice.sms.fi line 2: the template is 20027",
        ),
    ],
)
def test_a_template_render_would_refuse_is_refused_naming_the_line(
    store: Services, tmp_path: Path, source: str, says: str
) -> None:
    path = tmp_path / "body.j2"
    path.write_text(source, encoding="utf-8")
    code, output = _set(store.settings, path)
    assert code == 1, output
    assert says in output, output
    with store.reading() as conn:
        assert load_overrides(conn, "acme") == {}


def test_a_file_that_is_not_utf8_is_refused_naming_where_not_a_traceback(
    store: Services, tmp_path: Path
) -> None:
    path = tmp_path / "body.j2"
    path.write_bytes(b"Lasku {{ invoice.number }}\nkiitos" + b" \xe4\n")
    code, output = _set(store.settings, path)
    assert code == 1, output
    assert "Traceback" not in output
    assert "not UTF-8" in output
    assert "line 2" in output
    with store.reading() as conn:
        assert load_overrides(conn, "acme") == {}
