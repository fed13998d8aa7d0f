"""JSON from strangers, bounded in nesting depth, measured without recursion.

``json.loads`` recurses once per level and raises ``RecursionError`` near a thousand; pydantic
stops serialising near 255. Depth is therefore measured on the text and on decoded values with
explicit stacks, and a text nested past any useful depth is cut down before it is decoded, so a
batch with one absurd item still yields its other items.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Path = tuple[str | int, ...]

# A string token (to step over the brackets inside it; an unterminated one runs to the end of the
# text, so a stray quote cannot make the scan quadratic) or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\Z)|[\[\]{}]', re.DOTALL)


def _cut_deeper_than(text: str, keep: int) -> str:
    """``text`` with each array or object that opens deeper than ``keep`` levels replaced by
    ``null``: where it was deeper, it is now exactly ``keep`` levels deep."""
    out: list[str] = []
    depth = 0
    copied = 0  # text[:copied] is in out already
    cut_at: int | None = None
    for token in _TOKENS.finditer(text):
        char = token.group()[0]
        if char == '"':
            continue
        if char in "[{":
            depth += 1
            if depth == keep + 1 and cut_at is None:
                cut_at = token.start()
        else:
            if depth == keep + 1 and cut_at is not None:
                out += [text[copied:cut_at], "null"]
                copied, cut_at = token.end(), None
            depth = max(depth - 1, 0)
    if cut_at is not None:  # never closed: the text is malformed, and stays so
        out += [text[copied:cut_at], "null"]
        copied = len(text)
    out.append(text[copied:])
    return "".join(out)


def loads_bounded(text: str, max_depth: int) -> Any:
    """``json.loads`` that never recurses out: raises ``json.JSONDecodeError`` like it, and
    otherwise returns a value whose nesting past ``max_depth`` levels (if any) is still there to
    be found by ``too_deep``, though cut short further down."""
    try:
        return json.loads(text)
    except RecursionError:
        pass
    return json.loads(_cut_deeper_than(text, max_depth + 1))


def _within(container: Any, max_depth: int) -> bool:
    # The common case, kept cheap (it runs for every event published): level by level, no paths.
    level = [container]
    depth = 1
    while level:
        if depth > max_depth:
            return False
        below = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list | tuple):
                    below.append(child)
        level = below
        depth += 1
    return True


def too_deep(value: Any, max_depth: int) -> Path | None:
    """The path of the first array or object nested deeper than ``max_depth`` levels (``value``
    itself is level 1), or None; walked with a stack, so any depth is safe."""
    if not isinstance(value, dict | list | tuple) or _within(value, max_depth):
        return None
    stack: list[tuple[Any, Path, int]] = [(value, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if depth > max_depth:
            return path
        pairs = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in reversed(list(pairs)):  # reversed: the first child is walked first
            if isinstance(child, dict | list | tuple):
                stack.append((child, (*path, key), depth + 1))
    return None  # pragma: no cover (_within found a deeper one)


def find_string(value: Any, wanted: Callable[[str], bool]) -> tuple[Path, str] | None:
    """The first string in ``value`` (object keys too, in document order) that is ``wanted``,
    with its path, or None; ``value`` must be bounded in depth (see ``too_deep``)."""
    stack: list[tuple[Any, Path]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if wanted(node):
                return path, node
        elif isinstance(node, dict):
            for key, child in reversed(list(node.items())):
                stack.append((child, (*path, key)))
                if isinstance(key, str):
                    stack.append((key, (*path, key)))  # the key before its value
        elif isinstance(node, list | tuple):
            stack.extend((child, (*path, i)) for i, child in reversed(list(enumerate(node))))
    return None
