"""YAML documents as PyYAML nodes, so that every value keeps its line number.

Only composing is done (no construction), with the C loader when libyaml is
there: nothing is converted to Python types, so ``GO111MODULE: off`` stays
the text ``off`` (as the workflow runner reads it) and a value's line is
always at hand. Documents that fail to compose raise :class:`YamlError`.
"""

from __future__ import annotations

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BLOCK_STYLES = ("|", ">")


class YamlError(ValueError):
    """A YAML file that cannot be read; the message has the line."""


def documents(text: str) -> list[Node]:
    try:
        return [node for node in yaml.compose_all(text, Loader=_Loader) if node is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlError(f"{where}{problem}") from None


def line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def text_line(node: Node) -> int:
    """The line where a scalar's text starts (after ``|`` or ``>`` of a block scalar)."""
    if isinstance(node, ScalarNode) and node.style in _BLOCK_STYLES:
        return line(node) + 1
    return line(node)


def scalar(node: Node | None) -> str | None:
    if isinstance(node, ScalarNode):
        return str(node.value)
    return None


def get(node: Node | None, key: str) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key and isinstance(v, Node):
            return v
    return None


def get_scalar(node: Node | None, key: str) -> str | None:
    return scalar(get(node, key))


def items(node: Node | None) -> list[tuple[str, Node, Node]]:
    """(key text, key node, value node) of a mapping with scalar keys."""
    if not isinstance(node, MappingNode):
        return []
    return [(k.value, k, v) for k, v in node.value if isinstance(k, ScalarNode)]


def sequence(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def key_line(node: Node | None, key: str) -> int:
    """The line of ``key`` in a mapping, or 0."""
    if isinstance(node, MappingNode):
        for k, _ in node.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return line(k)
    return 0


def is_mapping(node: Node | None) -> bool:
    return isinstance(node, MappingNode)


def strings(node: Node | None) -> list[tuple[str, int]]:
    """A scalar or a sequence of scalars as (text, line) pairs."""
    if isinstance(node, ScalarNode):
        return [(str(node.value), text_line(node))]
    return [(str(n.value), text_line(n)) for n in sequence(node) if isinstance(n, ScalarNode)]
