"""MkDocs hook: the settings tables, generated from ``infra.settings.Settings`` at build time.

A page asks for a table with a marker on a line of its own::

    <!-- settings-table -->                                  every field, in source order
    <!-- settings-table: max_event_bytes, max_json_depth --> those fields, in that order

Text up to a closing ``<!-- /settings-table -->`` is replaced too: it is what a reader of the
unbuilt Markdown (on GitHub, say) sees instead of the table.

One row per field: its environment name (``HERALD_`` + the name; ``__`` for nested keys), its type
with its bounds, its default (a secret's is shown as "secret", never its value) and what it is for:
the field's ``Field(description=...)``, else the ``#:`` comment above it, else the plain ``#``
comment right above it, less a leading section label (``# SMTP (email).`` alone is no
description). A plain comment over several fields shows on the first of them only. The comments
are read from the source with ``tokenize``, the fields with ``ast``, the types and defaults from
the model.

A marker naming a field that does not exist is a warning, so ``mkdocs build --strict`` fails.
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import logging
import re
import sys
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

SETTINGS_MODULE = "infra.settings"
SETTINGS_CLASS = "Settings"
MARKER = re.compile(
    r"^<!--\s*settings-table(?::(?P<names>[^>]*))?\s*-->[ \t]*$"
    r"(?:(?:(?!<!--\s*settings-table).)*?^<!--\s*/settings-table\s*-->[ \t]*$)?",
    re.MULTILINE | re.DOTALL,
)
SECRET_TYPES = ("SecretStr", "SecretBytes")
# A section label in a plain comment: one short phrase ending in "." (or ":" before more text).
LABEL_ONLY = re.compile(r"[^.:]{1,45}\.")
LABELLED = re.compile(r"[^.:]{1,35}[.:]\s+(?P<rest>.+)", re.DOTALL)

log = logging.getLogger("mkdocs.hooks.settings_page")


@dataclass(frozen=True)
class Row:
    """One field of the settings model, as the table shows it."""

    field: str
    env: str
    type: str
    default: str
    about: str


def on_config(config: Any) -> Any:
    """Make the project importable: the hook runs from the repository root's ``mkdocs.yml``."""
    root = str(_root(config))
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def on_serve(server: Any, config: Any, builder: Any) -> Any:
    """``mkdocs serve`` rebuilds when the settings model changes."""
    server.watch(str(_source_path(config)))
    return server


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each settings marker of the page by its table."""
    if not MARKER.search(markdown):
        return markdown
    rows = {row.field: row for row in settings_rows(config)}

    def table(match: re.Match[str]) -> str:
        names = match.group("names")
        if names is None:
            chosen = list(rows.values())
        else:
            wanted = [n.strip() for n in names.split(",") if n.strip()]
            for name in wanted:
                if name not in rows:
                    log.warning("%s: %s has no field %r", page.file.src_uri, SETTINGS_CLASS, name)
            chosen = [rows[n] for n in wanted if n in rows]
        return render(chosen)

    return MARKER.sub(table, markdown)


_cache: dict[Path, tuple[float, list[Row]]] = {}


def settings_rows(config: Any) -> list[Row]:
    """Every field of the settings model; read again when its source changed (``mkdocs serve``)."""
    path = _source_path(config)
    stamp = path.stat().st_mtime
    cached = _cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    module = importlib.reload(importlib.import_module(SETTINGS_MODULE))
    rows = model_rows(getattr(module, SETTINGS_CLASS), path.read_text(encoding="utf-8"))
    _cache[path] = (stamp, rows)
    return rows


def model_rows(model: type[BaseModel], source: str, prefix: str | None = None) -> list[Row]:
    """The rows of ``model``, whose class is defined in ``source``; nested models get ``__`` rows."""
    model_config = model.model_config
    if prefix is None:
        prefix = str(model_config.get("env_prefix", ""))
    delimiter = model_config.get("env_nested_delimiter") or "__"
    comments = _field_comments(source, model.__name__)
    rows: list[Row] = []
    for name, info in model.model_fields.items():
        annotation, about = comments.get(name, ("", ""))
        about = info.description or about
        env = _env_name(prefix, name, info)
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            rows.extend(model_rows(info.annotation, source, prefix=f"{env}{delimiter}"))
            continue
        type_text = _type_text(annotation, info)
        if not env.startswith("`"):
            env = f"`{env}`"
        if annotation.startswith("dict["):
            env = f"{env}<br>or {env[:-1]}{delimiter}<KEY>`"
        rows.append(Row(name, env, type_text, _default_text(annotation, info, name), _cell(about)))
    return rows


def render(rows: list[Row]) -> str:
    """A Markdown table of ``rows``, in a ``settings-table`` block (``md_in_html``) for its style."""
    lines = ["| variable | type | default | what it is for |", "|---|---|---|---|"]
    lines += [f"| {r.env} | {r.type} | {r.default} | {r.about} |" for r in rows]
    return '<div class="settings-table" markdown>\n\n' + "\n".join(lines) + "\n\n</div>\n"


def _env_name(prefix: str, name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    if isinstance(alias, str):
        return f"`{alias}` (no prefix)"
    return f"{prefix}{name}".upper()


def _type_text(annotation: str, info: FieldInfo) -> str:
    """The annotation as written, ``| None`` dropped (the default says "unset"), with its bounds."""
    text = re.sub(r"\s*\|\s*None\b", "", annotation) or getattr(info.annotation, "__name__", "?")
    choices = _literal_values(info.annotation)
    if choices:
        text = "one of " + ", ".join(f"`{v}`" for v in choices)
    elif text in SECRET_TYPES:
        text = "secret string"
    else:
        text = f"`{text}`"
    bounds = []
    shortest = longest = None
    for item in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if isinstance(item, getattr(annotated_types, attr.capitalize())):
                bounds.append(f"{sign} {_number(getattr(item, attr))}")
        if isinstance(item, annotated_types.MinLen):
            shortest = item.min_length
        if isinstance(item, annotated_types.MaxLen):
            longest = item.max_length
        pattern = getattr(item, "pattern", None)
        if pattern:
            bounds.append(f"matching `{pattern}`")
    if shortest is not None or longest is not None:
        if shortest == longest:
            bounds.append(f"{shortest} characters")
        elif longest is None:
            bounds.append(f"at least {shortest} characters")
        else:
            bounds.append(f"{shortest or 0} to {longest} characters")
    return ", ".join([text, *bounds])


def _literal_values(annotation: Any) -> list[Any]:
    """The values of a ``Literal[...]`` annotation (``| None`` allowed), else nothing."""
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _literal_values(members[0])
    return []


def _default_text(annotation: str, info: FieldInfo, name: str) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None:
        return "unset"
    if any(t in annotation for t in SECRET_TYPES) or isinstance(value, SecretStr | SecretBytes):
        return "*secret*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        text = f"`{_number(value)}`"
        if name.endswith("_bytes") and value >= 1024:
            text += f" ({_size(int(value))})"
        return text
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _size(value: int) -> str:
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value:,} bytes"


def _cell(text: str) -> str:
    """A comment as one table cell: reST ``code`` as Markdown, pipes escaped outside code."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    parts = re.split(r"(`[^`]*`)", text)
    return "".join(p if p.startswith("`") else p.replace("|", "\\|") for p in parts)


def _field_comments(source: str, class_name: str) -> dict[str, tuple[str, str]]:
    """For each annotated field of ``class_name``: its annotation as written, and its comment.

    The comment is the ``#:`` block right above the field (or a ``#:`` at the end of its line);
    failing that, the plain ``#`` block right above it, less its section label (a block over
    several fields belongs to the first of them).
    """
    own_line: dict[int, str] = {}
    trailing: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            line = token.start[0]
            (own_line if token.line.strip().startswith("#") else trailing)[line] = token.string
    tree = ast.parse(source)
    cls = next(
        (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == class_name),
        None,
    )
    if cls is None:
        return {}
    found: dict[str, tuple[str, str]] = {}
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        annotation = ast.get_source_segment(source, node.annotation) or ""
        doc: list[str] = []
        plain: list[str] = []
        line = node.lineno - 1
        while line in own_line and own_line[line].startswith("#:"):
            doc.insert(0, own_line[line])
            line -= 1
        while line in own_line and not own_line[line].startswith("#:"):
            plain.insert(0, own_line[line])
            line -= 1
        tail = trailing.get(node.end_lineno or node.lineno, "")
        if not doc and tail.startswith("#:"):
            doc = [tail]
        found[node.target.id] = (annotation, _join(doc) or _without_label(_join(plain)))
    return found


def _without_label(comment: str) -> str:
    """A plain comment without its section label: ``SMTP (email).`` alone says nothing of a field,
    and ``Observability. Each process...`` says it from its second sentence on."""
    if LABEL_ONLY.fullmatch(comment):
        return ""
    labelled = LABELLED.fullmatch(comment)
    if labelled:
        rest = labelled.group("rest")
        return rest[:1].upper() + rest[1:]
    return comment


def _join(comment_lines: list[str]) -> str:
    return " ".join(c.lstrip("#").lstrip(":").strip() for c in comment_lines).strip()


def _root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent


def _source_path(config: Any) -> Path:
    return _root(config).joinpath(*SETTINGS_MODULE.split(".")).with_suffix(".py")
