"""Checks of a pipeline job YAML against its steps' components.

azure-ai-ml 1.35 drops a step input that the component does not declare. It also
accepts values outside an enum, non-numbers for numbers, bindings to missing steps
or outputs, and cycles, so the mistake shows only when the service or the step
fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plant2edge.validate_common import BINDING, Finding, did_you_mean, names
from plant2edge.validate_yaml import YamlDoc

PRIMITIVE_TYPES = {"string", "number", "integer", "boolean"}
BOOLEAN_VALUES = {"true", "false"}

ComponentLoader = Callable[[Path], "YamlDoc | None"]


@dataclass
class Step:
    name: str
    job: dict
    component: YamlDoc | None = None  # None when the component is not a local file


@dataclass
class Graph:
    # downstream step -> {upstream step: line of the binding}
    upstream: dict[str, dict[str, int]] = field(default_factory=dict)


def value_problem(value, port: dict) -> str | None:
    """Describe why literal ``value`` does not fit component input ``port``."""
    kind = str(port.get("type", ""))
    text = str(value).strip()
    if kind in ("number", "integer"):
        number = _parse_number(text, integer=kind == "integer")
        if number is None:
            return f"is not {'an integer' if kind == 'integer' else 'a number'}"
        low, high = port.get("min"), port.get("max")
        if low is not None and number < float(low):
            return f"is below the minimum {low}"
        if high is not None and number > float(high):
            return f"is above the maximum {high}"
    elif kind == "boolean" and text.lower() not in BOOLEAN_VALUES:
        return "is not a boolean (true or false)"
    enum = port.get("enum")
    if isinstance(enum, list) and text not in [str(choice) for choice in enum]:
        return f"is not one of the accepted values: {names(enum)}"
    return None


def _parse_number(text: str, integer: bool) -> float | None:
    try:
        return float(int(text)) if integer else float(text)
    except ValueError:
        return None


def is_literal(value) -> bool:
    if isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and "${{" not in value


def check_pipeline(doc: YamlDoc, load_component: ComponentLoader) -> list[Finding]:
    """Run every pipeline check on the pipeline job in ``doc``."""
    spec = doc.data
    if not isinstance(spec, dict) or not isinstance(spec.get("jobs"), dict):
        return []  # azure-ai-ml reports a pipeline without jobs.
    findings: list[Finding] = []
    steps = []
    for name, job in spec["jobs"].items():
        if not isinstance(job, dict):
            continue
        step = Step(str(name), job)
        findings += _resolve_component(doc, step, load_component)
        steps.append(step)
    graph = Graph()
    for step in steps:
        findings += check_step_ports(doc, step)
        findings += check_step_values(doc, step)
        findings += check_bindings(doc, step, {s.name: s for s in steps}, graph)
    findings += check_cycles(doc, graph)
    findings += check_unused_pipeline_ports(doc)
    return findings


def _resolve_component(doc: YamlDoc, step: Step, load_component) -> list[Finding]:
    reference = step.job.get("component")
    if not isinstance(reference, str) or reference.startswith("azureml:"):
        return []  # registered or inline components are checked by azure-ai-ml.
    path = (doc.path.parent / reference).resolve()
    if not path.is_file():
        return [
            Finding(
                doc.path,
                doc.value_line("jobs", step.name, "component"),
                f"step {step.name!r}: component file {reference} not found "
                f"(looked for {path})",
                f"write the path relative to {doc.path.parent.name}/, e.g. "
                "../components/<stage>/component.yaml",
                field=f"jobs.{step.name}.component",
            )
        ]
    step.component = load_component(path)
    return []


def _ports(step: Step, section: str) -> dict:
    if step.component is None or not isinstance(step.component.data, dict):
        return {}
    ports = step.component.data.get(section) or {}
    return ports if isinstance(ports, dict) else {}


def _component_name(step: Step) -> str:
    data = step.component.data if step.component else {}
    return str((data or {}).get("name") or step.job.get("component"))


def check_step_ports(doc: YamlDoc, step: Step) -> list[Finding]:
    """Check that a step sets only inputs and outputs its component declares."""
    if step.component is None:
        return []
    findings = []
    for section in ("inputs", "outputs"):
        declared = _ports(step, section)
        step_ports = step.job.get(section) or {}
        if not isinstance(step_ports, dict):
            continue
        for name in step_ports:
            if name in declared:
                continue
            findings.append(
                Finding(
                    doc.path,
                    doc.line_of("jobs", step.name, section, name),
                    f"step {step.name!r} sets {section[:-1]} {name!r}, which "
                    f"component {_component_name(step)} does not declare; "
                    "azure-ai-ml drops it without a warning."
                    + did_you_mean(name, declared),
                    f"use one of: {names(declared)}",
                    field=f"jobs.{step.name}.{section}.{name}",
                )
            )
    return findings


def check_step_values(doc: YamlDoc, step: Step) -> list[Finding]:
    """Check literal input values, and pipeline inputs bound directly to an input."""
    declared = _ports(step, "inputs")
    step_inputs = step.job.get("inputs") or {}
    if not isinstance(step_inputs, dict):
        return []
    parent_inputs = doc.data.get("inputs") or {}
    findings = []
    for name, value in step_inputs.items():
        port = declared.get(name)
        if not isinstance(port, dict) or port.get("type") not in PRIMITIVE_TYPES:
            continue
        if is_literal(value):
            problem = value_problem(value, port)
            if problem:
                findings.append(
                    Finding(
                        doc.path,
                        doc.value_line("jobs", step.name, "inputs", name),
                        f"step {step.name!r} input {name!r} = {value!r} {problem} "
                        f"({port['type']} input of {_component_name(step)})",
                        _value_fix(port),
                        field=f"jobs.{step.name}.inputs.{name}",
                    )
                )
            continue
        parent = _direct_parent_input(value)
        if parent is None or parent not in parent_inputs:
            continue
        parent_value = _literal_of_pipeline_input(parent_inputs[parent])
        if parent_value is None:
            continue
        problem = value_problem(parent_value, port)
        if problem:
            findings.append(
                Finding(
                    doc.path,
                    doc.value_line("inputs", parent),
                    f"pipeline input {parent!r} = {parent_value!r} {problem}; it is "
                    f"bound to step {step.name!r} input {name!r} ({port['type']})",
                    _value_fix(port),
                    field=f"inputs.{parent}",
                )
            )
    return findings


def _value_fix(port: dict) -> str:
    if isinstance(port.get("enum"), list):
        return f"use one of: {names(port['enum'])}"
    if port.get("type") == "boolean":
        return "use true or false"
    bounds = [f"{key} {port[key]}" for key in ("min", "max") if key in port]
    suffix = f" within {' and '.join(bounds)}" if bounds else ""
    article = "an" if port.get("type") == "integer" else "a"
    return f"give {article} {port.get('type')}{suffix}"


def _direct_parent_input(value) -> str | None:
    if not isinstance(value, str):
        return None
    match = BINDING.fullmatch(value.strip())
    if not match:
        return None
    parts = match.group(1).split(".")
    if len(parts) == 3 and parts[:2] == ["parent", "inputs"]:
        return parts[2]
    return None


def _literal_of_pipeline_input(value):
    if is_literal(value):
        return value
    if isinstance(value, dict):
        for key in ("value", "default"):
            if is_literal(value.get(key)):
                return value[key]
    return None


def check_bindings(
    doc: YamlDoc, step: Step, steps: dict, graph: Graph
) -> list[Finding]:
    """Check every ``${{parent...}}`` in a step and record step dependencies."""
    findings = []
    for text in _strings(step.job):
        for match in BINDING.finditer(text):
            line = doc.find_in_value(match.group(0), "jobs", step.name)
            problem, upstream = _binding_problem(doc, match.group(1), steps)
            if upstream is not None:
                graph.upstream.setdefault(step.name, {}).setdefault(upstream, line)
            if problem:
                message, fix = problem
                findings.append(
                    Finding(
                        doc.path,
                        line,
                        f"step {step.name!r}: {match.group(0)} {message}",
                        fix,
                        field=f"jobs.{step.name}",
                    )
                )
    return findings


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "component":
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _binding_problem(doc: YamlDoc, expression: str, steps: dict):
    """Return ((message, fix) or None, upstream step or None) for one binding."""
    parts = expression.split(".")
    if parts[0] != "parent":
        return None, None  # e.g. ${{inputs.x}} in an inline command job.
    if len(parts) >= 3 and parts[1] in ("inputs", "outputs"):
        declared = doc.data.get(parts[1]) or {}
        if parts[2] in declared:
            return None, None
        return (
            f"refers to a pipeline {parts[1][:-1]} that is not declared."
            + did_you_mean(parts[2], declared),
            f"declare {parts[2]!r} under the pipeline's {parts[1]}: or use one "
            + f"of: {names(declared)}",
        ), None
    if len(parts) >= 5 and parts[1] == "jobs" and parts[3] in ("inputs", "outputs"):
        upstream, section, name = parts[2], parts[3], parts[4]
        if upstream not in steps:
            return (
                f"refers to step {upstream!r}, which the pipeline does not have."
                + did_you_mean(upstream, steps),
                f"use one of the steps: {names(steps)}",
            ), None
        declared = _ports(steps[upstream], section)
        if steps[upstream].component is not None and name not in declared:
            return (
                f"refers to {section[:-1]} {name!r} of step {upstream!r}, which its "
                f"component does not declare." + did_you_mean(name, declared),
                f"use one of: {names(declared)}",
            ), upstream
        return None, upstream
    return (
        "is not a binding Azure ML resolves",
        "write ${{parent.inputs.NAME}}, ${{parent.outputs.NAME}} or "
        + "${{parent.jobs.STEP.outputs.NAME}}",
    ), None


def check_cycles(doc: YamlDoc, graph: Graph) -> list[Finding]:
    """Report each cycle of step dependencies once."""
    findings = []
    seen: set[tuple[str, ...]] = set()
    for start in sorted(graph.upstream):
        for cycle in _cycles_from(start, graph):
            key = _canonical(cycle)
            if key in seen:
                continue
            seen.add(key)
            # The binding that closes the cycle: the first step reads the last one.
            first, last = key[0], key[-1]
            line = graph.upstream[first][last]
            chain = " -> ".join([*key, key[0]])
            findings.append(
                Finding(
                    doc.path,
                    line,
                    f"steps depend on each other in a cycle: {chain} (each reads the "
                    "output of the one before)",
                    "remove one of these bindings so that data flows one way",
                    field=f"jobs.{first}",
                )
            )
    return findings


def _cycles_from(start: str, graph: Graph):
    # Walk from `start` against the data flow; a path that returns to `start` is a
    # cycle. Paths are short (a pipeline has a handful of steps).
    stack = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for upstream in sorted(graph.upstream.get(node, {})):
            if upstream == start:
                yield list(reversed(path))
            elif upstream not in path:
                stack.append((upstream, [*path, upstream]))


def _canonical(cycle: list[str]) -> tuple[str, ...]:
    index = cycle.index(min(cycle))
    return tuple(cycle[index:] + cycle[:index])


def check_unused_pipeline_ports(doc: YamlDoc) -> list[Finding]:
    """Report pipeline inputs and outputs that no step binds."""
    used = set()
    for text in _strings(doc.data.get("jobs") or {}):
        for match in BINDING.finditer(text):
            parts = match.group(1).split(".")
            if len(parts) >= 3 and parts[0] == "parent":
                used.add((parts[1], parts[2]))
    findings = []
    for section in ("inputs", "outputs"):
        declared = doc.data.get(section) or {}
        if not isinstance(declared, dict):
            continue
        for name in declared:
            if (section, name) in used:
                continue
            findings.append(
                Finding(
                    doc.path,
                    doc.line_of(section, name),
                    f"pipeline {section[:-1]} {name!r} is not bound to any step, so "
                    "setting it changes nothing",
                    f"bind it in a step as ${{{{parent.{section}.{name}}}}} or "
                    "remove it",
                    field=f"{section}.{name}",
                )
            )
    return findings
