"""Input values of a pipeline: bindings, paths and checked literals."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from plant2edge.local.errors import PipelineSpecError

PATH_TYPES = frozenset({"uri_file", "uri_folder", "mlflow_model", "custom_model"})
MODEL_TYPES = frozenset({"mlflow_model", "custom_model"})

_BINDING = re.compile(r"^\$\{\{\s*parent\.([A-Za-z0-9_.-]+?)\s*\}\}$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class ParentBinding:
    """``${{parent.inputs.<name>}}`` or ``${{parent.outputs.<name>}}``."""

    kind: str
    name: str
    text: str


@dataclass(frozen=True)
class StepOutput:
    """``${{parent.jobs.<step>.outputs.<name>}}``."""

    step: str
    name: str
    text: str


@dataclass(frozen=True)
class PathValue:
    """A path-like input value as written: local path, URL or ``azureml:`` reference.

    ``origin`` is the YAML key the value came from, such as ``inputs.data`` or
    ``jobs.train.inputs.data``.
    """

    type: str | None
    path: str
    origin: str


def parse_binding(text: str, origin: str) -> ParentBinding | StepOutput:
    """Parse a ``${{parent...}}`` binding that is the whole value."""
    match = _BINDING.match(text.strip())
    parts = match.group(1).split(".") if match else []
    if len(parts) == 2 and parts[0] in ("inputs", "outputs"):
        return ParentBinding(parts[0], parts[1], text.strip())
    if len(parts) == 4 and parts[0] == "jobs" and parts[2] == "outputs":
        return StepOutput(parts[1], parts[3], text.strip())
    raise PipelineSpecError(
        f"{origin}: invalid binding {text!r}. Write the whole value as "
        "'${{parent.inputs.<name>}}', '${{parent.jobs.<step>.outputs.<name>}}' "
        "or, for a step output, '${{parent.outputs.<name>}}'."
    )


def check_literal(where: str, declared, value: Any) -> Any:
    """Check a literal against a declared input and return it normalized.

    Booleans written as text (``"true"``, ``"False"``) become bool; every other
    value is returned as given, so numbers keep the text they were written with.
    """
    if isinstance(value, (dict, list)):
        raise PipelineSpecError(
            f"{where} must be a single value of type {declared.type}, got {value!r}."
        )
    kind = declared.type
    if kind == "boolean":
        value = _to_boolean(where, value)
    elif kind == "integer":
        _check_number(where, value, integer=True, declared=declared)
    elif kind == "number":
        _check_number(where, value, integer=False, declared=declared)
    _check_enum(where, value, declared.enum)
    return value


def _to_boolean(where: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOLEANS:
        return _BOOLEANS[value.strip().lower()]
    raise PipelineSpecError(f"{where} is a boolean, got {value!r}. Use true or false.")


def _check_number(where: str, value: Any, integer: bool, declared) -> None:
    number = _parse_number(value, integer)
    kind = "an integer" if integer else "a number"
    if number is None:
        example = "a whole number" if integer else "a decimal number"
        if declared.default is not None:
            example += f" such as its default {declared.default}"
        raise PipelineSpecError(
            f"{where} must be {kind}, got {value!r}. Write {example}."
        )
    low, high = declared.min, declared.max
    if low is not None and number < float(low):
        raise PipelineSpecError(
            f"{where} is {value}, below its minimum {low}. Use a value of at least "
            f"{low}."
        )
    if high is not None and number > float(high):
        raise PipelineSpecError(
            f"{where} is {value}, above its maximum {high}. Use a value of at most "
            f"{high}."
        )


def _parse_number(value: Any, integer: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float):
        return None if integer or not math.isfinite(value) else value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if integer:
        return float(int(text)) if _INTEGER.match(text) else None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _check_enum(where: str, value: Any, enum) -> None:
    if not enum:
        return
    allowed = [str(item) for item in enum]
    if str(value) not in allowed:
        raise PipelineSpecError(
            f"{where} is {value!r}, which is not one of: {', '.join(allowed)}."
        )
