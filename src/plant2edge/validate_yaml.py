"""YAML documents that remember where each key and value sits in the file.

azure-ai-ml loads YAML into plain dicts and loses the line numbers, so the checks
in ``plant2edge validate`` read each file a second time with PyYAML's composer,
which keeps a mark (line, column) on every node.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STR_TAG = "tag:yaml.org,2002:str"


class YamlError(ValueError):
    """A file that is not valid YAML; ``line`` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


@dataclass
class YamlDoc:
    """One parsed YAML file: the plain data plus the node tree with marks."""

    path: Path
    data: Any
    root: yaml.Node | None
    lines: list[str]

    def node(self, *keys: str | int) -> yaml.Node | None:
        """Return the value node at ``keys`` (mapping keys or sequence indexes)."""
        found = self._walk(keys)
        return found[1] if found else None

    def key_node(self, *keys: str | int) -> yaml.Node | None:
        """Return the key node of the last mapping key in ``keys``."""
        found = self._walk(keys)
        return found[0] if found else None

    def line_of(self, *keys: str | int) -> int:
        """Return the 1-based line of the key at ``keys``.

        When the full path does not exist, the line of the longest existing prefix
        is returned, and line 1 when nothing matches.
        """
        for length in range(len(keys), 0, -1):
            found = self._walk(keys[:length])
            if found:
                key, value = found
                return (key or value).start_mark.line + 1
        return 1

    def value_line(self, *keys: str | int) -> int:
        """Return the 1-based line where the value at ``keys`` starts."""
        value = self.node(*keys)
        if value is None:
            return self.line_of(*keys)
        return value.start_mark.line + 1

    def find_in_value(self, text: str, *keys: str | int) -> int:
        """Return the first line inside the value at ``keys`` that contains ``text``.

        Block scalars (``>-``, ``|``) span several lines of the file, and folding
        changes the line breaks of the loaded string, so the raw lines are searched.
        """
        value = self.node(*keys)
        if value is None:
            return self.line_of(*keys)
        first = value.start_mark.line
        last = min(value.end_mark.line, len(self.lines) - 1)
        for index in range(first, last + 1):
            if text in self.lines[index]:
                return index + 1
        return first + 1

    def _walk(self, keys) -> tuple[yaml.Node | None, yaml.Node] | None:
        node, key_node = self.root, None
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                match = next(
                    (pair for pair in node.value if pair[0].value == str(key)), None
                )
                if match is None:
                    return None
                key_node, node = match
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                if not 0 <= key < len(node.value):
                    return None
                key_node, node = None, node.value[key]
            else:
                return None
        if node is None:
            return None
        return key_node, node


def load_yaml(path: Path) -> YamlDoc:
    """Parse ``path`` into a :class:`YamlDoc`; raise :class:`YamlError` if invalid."""
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlError(f"invalid YAML: {exc.problem or exc}", line) from exc
    finally:
        loader.dispose()
    return YamlDoc(path=path, data=data, root=root, lines=text.splitlines())


def is_plain_string(node: yaml.Node | None) -> bool:
    """Return whether ``node`` is a scalar that YAML resolved to a string."""
    return isinstance(node, yaml.ScalarNode) and node.tag == STR_TAG
