"""Findings and helpers shared by the checks of ``plant2edge validate``."""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

# ${{inputs.x}} / ${{outputs.y}} inside a component command.
COMMAND_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
# $[[ ... ]]: the part of a command that Azure ML drops when its optional input is unset.
OPTIONAL_SEGMENT = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
# Any ${{...}} expression, for bindings in pipelines.
BINDING = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


@dataclass(frozen=True)
class Finding:
    """One problem in one file, printed as ``path:line: message (fix: ...)``."""

    path: Path
    line: int
    message: str
    fix: str
    # Dotted YAML path of the field the finding is about, when there is one. Used to
    # drop an azure-ai-ml error on a field that a more precise check also reported.
    field: str | None = dataclasses.field(default=None, compare=False)
    source: str = dataclasses.field(default="plant2edge", compare=False)

    def format(self, root: Path | None = None) -> str:
        return f"{display_path(self.path, root)}:{self.line}: {self.message} (fix: {self.fix})"


def display_path(path: Path, root: Path | None) -> str:
    """Return ``path`` relative to ``root`` when it is inside it, else as given."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def did_you_mean(name: str, choices) -> str:
    """Return ' Did you mean 'x'?' for a close match in ``choices``, else ''."""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def names(choices) -> str:
    """Return ``choices`` as a comma-separated list for a message, or 'none'."""
    listed = ", ".join(str(choice) for choice in choices)
    return listed or "none"
