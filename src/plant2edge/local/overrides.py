"""``--set key=value`` overrides, applied the way ``az ml job create --set`` does."""

from __future__ import annotations

from typing import Any

from plant2edge.local.errors import PipelineSpecError

TOP_LEVEL_KEYS = ("experiment_name", "display_name", "description")
_FORMS = "inputs.<name>, inputs.<name>.path, jobs.<step>.inputs.<name>, " + ", ".join(
    TOP_LEVEL_KEYS
)


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """Turn ``["inputs.x=1", ...]`` into ``{"inputs.x": "1"}``."""
    parsed = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PipelineSpecError(
                f"Invalid --set {item!r}: write KEY=VALUE, for example "
                "--set inputs.window_size=300."
            )
        parsed[key.strip()] = value
    return parsed


def apply_overrides(raw: dict, overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply ``overrides`` to the raw pipeline dict in place.

    Returns the same overrides as azure-ai-ml's ``params_override`` list.
    Raises PipelineSpecError for a key that names no pipeline input or step.
    """
    params = []
    for key, value in overrides.items():
        parts = key.split(".")
        if key in TOP_LEVEL_KEYS:
            raw[key] = value
            target = key
        elif parts[0] == "inputs" and len(parts) in (2, 3):
            known = _pipeline_input_names(raw)
            raw["inputs"] = raw.get("inputs") or {}
            target = _set_input(raw["inputs"], parts[1:], value, key, "inputs", known)
        elif parts[0] == "jobs" and len(parts) in (4, 5) and parts[2] == "inputs":
            node = _job(raw, parts[1], key)
            node_inputs = node.get("inputs") or {}
            node["inputs"] = node_inputs
            target = _set_input(
                node_inputs, parts[3:], value, key, f"jobs.{parts[1]}.inputs", None
            )
        else:
            raise PipelineSpecError(
                f"Unsupported override {key!r}. Accepted keys: {_FORMS}."
            )
        params.append({target: value})
    return params


def _pipeline_input_names(raw: dict) -> list[str]:
    return list((raw.get("inputs") or {}).keys())


def _set_input(inputs: dict, parts, value, key, prefix, known) -> str:
    name = parts[0]
    if known is not None and name not in known:
        raise PipelineSpecError(
            f"Override {key!r} names pipeline input {name!r}, which the pipeline "
            f"does not have. Pipeline inputs: {', '.join(known) or 'none'}."
        )
    current = inputs.get(name)
    if len(parts) == 2:
        if not isinstance(current, dict):
            raise PipelineSpecError(
                f"Override {key!r}: input {name!r} is not a mapping with 'type' and "
                f"'path', so it has no field {parts[1]!r}. Use {prefix}.{name}=VALUE."
            )
        current[parts[1]] = value
        return key
    if isinstance(current, dict) and "path" in current:
        # A scalar for a {type, path} input replaces its path and keeps its type.
        current["path"] = value
        return f"{prefix}.{name}.path"
    inputs[name] = value
    return key


def _job(raw: dict, step: str, key: str) -> dict:
    jobs = raw.get("jobs") or {}
    if step not in jobs or not isinstance(jobs[step], dict):
        raise PipelineSpecError(
            f"Override {key!r} names step {step!r}, which the pipeline does not "
            f"have. Steps: {', '.join(jobs) or 'none'}."
        )
    return jobs[step]
