"""MkDocs hook: the docs name the repository's files and tests, and those names must be true.

- An inline code span naming a test (``test_sms_6_a_contact_who_replied_stop_is_opted_out``,
  or ``tests/unit/test_recipients.py::test_…``) must name a test function under ``tests/``.
- An inline code span that is a repository path to a Python file or a folder
  (``workers/rules/recipients.py``, ``producers/operations/``) must exist.
- ``benchmarks/results.png`` (drawn by ``make bench``) is published with the site, from where it is.

What does not hold is a warning, so ``mkdocs build --strict`` fails on a stale name.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

REPO_FILES = ("benchmarks/results.png",)
PACKAGES = ("schemas", "producers", "workers", "infra", "tooling", "tests", "benchmarks")
TEST_NAME = re.compile(r"(?:(?P<path>tests/[\w/]+\.py)::)?(?P<name>test_\w+)")
REPO_PATH = re.compile(rf"(?:{'|'.join(PACKAGES)})/(?:[\w.-]+/)*(?:[\w.-]+\.py)?")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")

log = logging.getLogger("mkdocs.hooks.repo_refs")


def on_files(files: Files, config: Any) -> Files:
    """Publish the repository files the pages show (the benchmark chart) under the same path."""
    root = _root(config)
    for path in REPO_FILES:
        source = root / path
        if source.is_file():
            files.append(File.generated(config, path, abs_src_path=str(source)))
        else:
            log.warning("%s is missing: the docs show it", path)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Warn about each test or repository path the page names that does not exist."""
    root = _root(config)
    tests = _test_names(root)
    prose = FENCE.sub("", markdown)
    for span in CODE_SPAN.findall(prose):
        text = span.strip()
        test = TEST_NAME.fullmatch(text)
        if test:
            path, name = test.group("path"), test.group("name")
            known = tests.get(name, set())
            if not known or (path and path not in known):
                log.warning("%s names %s, which is no test", page.file.src_uri, text)
        elif REPO_PATH.fullmatch(text) and not (root / text).exists():
            log.warning("%s names %s, which does not exist", page.file.src_uri, text)
    return markdown


_cache: dict[Path, tuple[float, dict[str, set[str]]]] = {}


def _test_names(root: Path) -> dict[str, set[str]]:
    """Every test function under ``tests/``, with the files that define it (cached per build)."""
    sources = sorted((root / "tests").rglob("test_*.py"))
    stamp = max((p.stat().st_mtime for p in sources), default=0.0)
    cached = _cache.get(root)
    if cached and cached[0] == stamp:
        return cached[1]
    names: dict[str, set[str]] = {}
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                names.setdefault(node.name, set()).add(path.relative_to(root).as_posix())
    _cache[root] = (stamp, names)
    return names


def _root(config: Any) -> Path:
    return Path(config.config_file_path).resolve().parent
