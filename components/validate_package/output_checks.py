"""Checks of edge package outputs against the model's own predictions.

Each check returns a list of failures (strings); the first failure names the
window, what was expected and what came back.
"""

from __future__ import annotations

import json
import math

# AI Inference Server variable type -> Python types a value of it may have.
PYTHON_TYPES = {
    "Integer": (int,),
    "Double": (float, int),
    "String": (str,),
    "Boolean": (bool,),
}


def check_count(expected: list, outputs: list) -> list[str]:
    if len(outputs) == len(expected):
        return []
    return [
        f"The edge package emitted {len(outputs)} outputs for {len(expected)} windows."
    ]


def check_states(
    expected: list, outputs: list, output_name: str, window_rows
) -> list[str]:
    """Compare ``outputs[i][output_name]`` with ``expected[i]`` window by window.

    ``window_rows(i)`` returns the (first, last) payload row index of window i.
    """
    failures = []
    for index, (want, out) in enumerate(zip(expected, outputs)):
        got = out.get(output_name) if isinstance(out, dict) else out
        if got != want:
            first, last = window_rows(index)
            failures.append(
                f"Window {index} (payload rows {first}-{last}): expected "
                f"{output_name}={want!r}, got {got!r}."
            )
    return failures


def check_types(outputs: list, declared: dict[str, str]) -> list[str]:
    """Check that every output has exactly the declared variables, with their types."""
    failures = []
    for index, out in enumerate(outputs):
        if not isinstance(out, dict):
            failures.append(f"Output {index} is a {type(out).__name__}, not a dict.")
            continue
        for name, type_name in declared.items():
            if name not in out:
                failures.append(f"Output {index} lacks the declared variable {name!r}.")
                continue
            value = out[name]
            allowed = PYTHON_TYPES.get(type_name)
            if allowed is None:
                continue
            wrong_bool = isinstance(value, bool) and bool not in allowed
            if wrong_bool or not isinstance(value, allowed):
                failures.append(
                    f"Output {index}: {name}={value!r} is a {type(value).__name__}, "
                    f"but {name} is declared {type_name}."
                )
        extra = sorted(set(out) - set(declared) - {"timestamp"})
        if extra:
            failures.append(f"Output {index} has undeclared variables {extra}.")
    return failures


def check_metrics(outputs: list, metric_names: list[str]) -> list[str]:
    """Check that each metric is a JSON object with a finite number under "value"."""
    failures = []
    for index, out in enumerate(outputs):
        if not isinstance(out, dict):
            continue
        for name in metric_names:
            text = out.get(name)
            if not isinstance(text, str):
                continue  # reported by check_types
            try:
                value = json.loads(text)["value"]
            except (json.JSONDecodeError, KeyError, TypeError):
                failures.append(
                    f'Output {index}: metric {name}={text!r} is not JSON like {{"value": 1.5}}.'
                )
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                failures.append(
                    f"Output {index}: metric {name} value {value!r} is not a number."
                )
            elif not math.isfinite(value):
                failures.append(
                    f"Output {index}: metric {name} value {value!r} is not finite."
                )
    return failures
