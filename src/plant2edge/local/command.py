"""Render a component's ``command`` the way Azure ML does before it runs it.

``${{inputs.x}}`` and ``${{outputs.y}}`` are replaced by values. A block
``$[[ ... ]]`` is kept without its delimiters when every input inside it has a
value and is dropped as a whole when any of them has none, so an optional
input is written ``$[[--flag ${{inputs.x}}]]``. Booleans are written ``True`` /
``False`` and numbers as given. String values go in as they are, so
``check_shell_text`` rejects values that bash would read as syntax.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{\{\s*(\w+)\.([A-Za-z0-9_.-]+)\s*\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
# Characters that bash reads as syntax, expansion or globbing outside quotes,
# and inside double quotes. Space and tab only split words, which the
# components expect because Azure ML does not quote values either.
_UNQUOTED_SPECIAL = frozenset("|&;<>()$`\\\"'*?[\n")
_DOUBLE_QUOTED_SPECIAL = frozenset('"$`\\')
_WORD_START_SPECIAL = re.compile(r"(?:^|\s)([#~])")


class CommandRenderError(ValueError):
    """A placeholder in ``command`` that cannot be rendered."""


def format_value(value) -> str:
    """Return the command-line text for one input value."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, Path):
        # Azure ML mount paths never need quoting; local paths might.
        return shlex.quote(str(value))
    return str(value)


def placeholders(command: str) -> list[tuple[str, str]]:
    """Return the ``(kind, name)`` pairs of every ``${{kind.name}}`` in ``command``."""
    return PLACEHOLDER.findall(command)


def render(command: str, inputs: dict[str, object], outputs: dict[str, object]) -> str:
    """Return ``command`` with placeholders and optional blocks resolved.

    ``inputs`` maps every declared input to its value, or None when it has no
    value. Raises CommandRenderError for a placeholder that names an undeclared
    input or output, and for an input without a value outside ``$[[...]]``.
    """

    def render_block(match: re.Match) -> str:
        body = match.group(1)
        for kind, name in placeholders(body):
            if kind == "inputs" and name in inputs and inputs[name] is None:
                return ""
        return body

    unblocked = OPTIONAL_BLOCK.sub(render_block, command)
    if "$[[" in unblocked:
        raise CommandRenderError(
            "Unbalanced optional block in command: every '$[[' needs a matching "
            f"']]'. Command: {command}"
        )

    def substitute(match: re.Match) -> str:
        kind, name = match.group(1), match.group(2)
        return format_value(_lookup(kind, name, inputs, outputs))

    return PLACEHOLDER.sub(substitute, unblocked)


def check_shell_text(command: str, inputs: dict[str, object]) -> None:
    """Raise CommandRenderError for a string input that bash would not pass as text.

    Azure ML pastes input values into ``command`` as they are and runs it with
    a shell, so a value such as a SAS URL with ``&`` splits the command unless
    the component quotes the placeholder: ``'${{inputs.x}}'``.
    """
    for name, quote in _placeholder_quotes(command):
        value = inputs.get(name)
        if not isinstance(value, str):
            continue
        if quote == "'":
            found = ["'"] if "'" in value else []
        elif quote == '"':
            found = sorted(set(value) & _DOUBLE_QUOTED_SPECIAL)
        else:
            found = sorted(set(value) & _UNQUOTED_SPECIAL)
            found += sorted(set(_WORD_START_SPECIAL.findall(value)))
        if found:
            raise CommandRenderError(_shell_text_message(name, found, quote))


def _shell_text_message(name: str, found: list[str], quote: str | None) -> str:
    characters = ", ".join(repr(character) for character in found)
    placeholder = f"${{{{inputs.{name}}}}}"
    if quote == "'":
        return (
            f"Input {name!r} contains a single quote, which ends the quoted "
            f"'{placeholder}' in the command. Remove the single quote from the value."
        )
    where = "in double quotes" if quote else "unquoted"
    return (
        f"Input {name!r} contains {characters}, which bash reads as shell syntax "
        f"because the command has {placeholder} {where} (Azure ML inserts values "
        f"as they are). Remove those characters from the value, or write the "
        f"placeholder in single quotes in the component's command: '{placeholder}'."
    )


def _placeholder_quotes(command: str) -> list[tuple[str, str | None]]:
    """Return ``(input name, enclosing quote or None)`` for each input placeholder."""
    found = []
    quote = None
    index = 0
    while index < len(command):
        match = PLACEHOLDER.match(command, index)
        if match:
            if match.group(1) == "inputs":
                found.append((match.group(2), quote))
            index = match.end()
            continue
        character = command[index]
        if character == "\\" and quote != "'":
            index += 2
            continue
        if character in "'\"" and quote in (None, character):
            quote = None if quote else character
        index += 1
    return found


def _lookup(kind: str, name: str, inputs: dict, outputs: dict):
    if kind == "inputs":
        if name not in inputs:
            raise CommandRenderError(
                f"Command uses ${{{{inputs.{name}}}}} but the component declares no "
                f"input {name!r}. Declared inputs: {_names(inputs)}."
            )
        if inputs[name] is None:
            raise CommandRenderError(
                f"Input {name!r} has no value, and the command uses it outside an "
                f"optional block. Give it a value, or write it as "
                f"$[[--{name} ${{{{inputs.{name}}}}}]] in the command."
            )
        return inputs[name]
    if kind == "outputs":
        if name not in outputs:
            raise CommandRenderError(
                f"Command uses ${{{{outputs.{name}}}}} but the component declares no "
                f"output {name!r}. Declared outputs: {_names(outputs)}."
            )
        return outputs[name]
    raise CommandRenderError(
        f"Unsupported placeholder ${{{{{kind}.{name}}}}} in command: the local "
        "runner knows ${{inputs.<name>}} and ${{outputs.<name>}}."
    )


def _names(mapping: dict) -> str:
    return ", ".join(mapping) or "none"
