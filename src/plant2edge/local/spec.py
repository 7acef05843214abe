"""Load a pipeline job YAML into a checked plan: steps, bindings and run order.

azure-ai-ml parses the pipeline and its components and runs its own offline
validation. It silently drops a node input that the component does not
declare and accepts bindings to missing steps, outputs or parent inputs and
cycles, so this module also reads the raw YAML and checks those itself.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plant2edge.local import command as command_text
from plant2edge.local.errors import PipelineSpecError
from plant2edge.local.graph import check_bindings, order_steps
from plant2edge.local.overrides import apply_overrides
from plant2edge.local.values import (
    PATH_TYPES,
    ParentBinding,
    PathValue,
    StepOutput,
    check_literal,
    parse_binding,
)

logger = logging.getLogger(__name__)

# azure-ai-ml warns about its experimental schema classes on every load.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)


@dataclass
class InputSpec:
    name: str
    type: str
    optional: bool = False
    default: Any = None
    enum: list | None = None
    min: float | None = None
    max: float | None = None


@dataclass
class ComponentSpec:
    name: str
    source: Path
    code_dir: Path
    command: str
    inputs: dict[str, InputSpec]
    outputs: dict[str, str]  # output name -> type


@dataclass
class AssetRequest:
    """A step output that is registered as a data asset after a successful run."""

    name: str
    version: str | None
    type: str
    description: str = ""


@dataclass
class StepSpec:
    name: str
    component: ComponentSpec
    # Node inputs as written (after overrides): a literal, a ParentBinding,
    # a StepOutput or a PathValue. Inputs the node leaves out are absent.
    inputs: dict[str, Any]
    # Node output name -> pipeline output name it is bound to.
    pipeline_outputs: dict[str, str] = field(default_factory=dict)
    registrations: dict[str, AssetRequest] = field(default_factory=dict)
    environment_variables: dict[str, str] = field(default_factory=dict)

    def upstream(self) -> set[str]:
        return {v.step for v in self.inputs.values() if isinstance(v, StepOutput)}


@dataclass
class PipelineOutputSpec:
    name: str
    type: str
    step: str
    step_output: str
    asset: AssetRequest | None = None


@dataclass
class PipelineSpec:
    path: Path
    experiment_name: str
    display_name: str | None
    inputs: dict[str, Any]  # literal, PathValue or None
    outputs: dict[str, PipelineOutputSpec]
    steps: dict[str, StepSpec]  # in run order
    overrides: dict[str, str]

    @property
    def stem(self) -> str:
        return self.path.stem


def load_pipeline(path: str | Path, overrides: dict[str, Any] | None = None):
    """Return the checked PipelineSpec of ``path`` with ``overrides`` applied.

    ``overrides`` maps ``inputs.<name>`` or ``jobs.<step>.inputs.<name>`` to a
    value, as ``az ml job create --set`` does. Raises PipelineSpecError.
    """
    path = Path(path).resolve()
    raw = _read_yaml(path)
    _check_component_files(raw["jobs"], path)
    overrides = {
        str(key): str(value) if isinstance(value, Path) else value
        for key, value in (overrides or {}).items()
    }
    params_override = apply_overrides(raw, overrides)
    job = _load_azure_job(path, params_override)
    steps = {
        name: _parse_step(name, raw_job, job.jobs.get(name), path, overrides)
        for name, raw_job in raw["jobs"].items()
    }
    inputs = _parse_pipeline_inputs(raw.get("inputs") or {})
    check_bindings(steps, inputs)
    order = order_steps(steps)
    spec = PipelineSpec(
        path=path,
        experiment_name=str(raw.get("experiment_name") or path.stem),
        display_name=raw.get("display_name"),
        inputs=inputs,
        outputs=_pipeline_outputs(raw.get("outputs") or {}, steps),
        steps={name: steps[name] for name in order},
        overrides={k: str(v) for k, v in overrides.items()},
    )
    for step in spec.steps.values():
        _check_values(step, spec.inputs)
        _check_command(step, spec.inputs)
    _check_azure_validation(job)
    return spec


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key written twice in one mapping.

    PyYAML and azure-ai-ml keep the last value silently, which hides a typo.
    """


def _construct_unique_mapping(loader, node, deep=False):
    lines: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str):
            continue
        line = key_node.start_mark.line + 1
        if key in lines:
            raise yaml.constructor.ConstructorError(
                problem=f"key {key!r} is written twice, on lines {lines[key]} and "
                f"{line}; keep one of them",
                problem_mark=key_node.start_mark,
            )
        lines[key] = line
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise PipelineSpecError(f"Pipeline file {path} not found. Check the path.")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise PipelineSpecError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("type", "pipeline") != "pipeline":
        raise PipelineSpecError(
            f"{path} is not a pipeline job: expected a mapping with 'type: pipeline'."
        )
    if not isinstance(raw.get("jobs"), dict) or not raw["jobs"]:
        raise PipelineSpecError(f"{path} has no steps: add them under 'jobs:'.")
    return raw


def _check_component_files(jobs: dict, pipeline_path: Path) -> None:
    # azure-ai-ml reports a missing component file as an unknown registry asset.
    for name, job in jobs.items():
        reference = job.get("component") if isinstance(job, dict) else None
        if not isinstance(reference, str) or reference.startswith("azureml:"):
            continue
        component = (pipeline_path.parent / reference).resolve()
        if not component.is_file():
            raise PipelineSpecError(
                f"Step {name!r}: component file {component} not found. Component "
                f"paths are relative to the pipeline file's folder "
                f"{pipeline_path.parent}; fix the 'component:' path."
            )


def _load_azure_job(path: Path, params_override: list[dict]):
    # azure-ai-ml 1.35 triggers hundreds of marshmallow deprecation warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from azure.ai.ml import load_job

        try:
            return load_job(path, params_override=params_override)
        except Exception as exc:  # azure-ai-ml raises many unrelated types here
            raise PipelineSpecError(
                f"azure-ai-ml could not load {path}: {exc}"
            ) from exc


def _check_azure_validation(job) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = job._validate()
    if not result.passed:
        details = "; ".join(f"{k}: {v}" for k, v in result.error_messages.items())
        raise PipelineSpecError(f"The pipeline is invalid for Azure ML: {details}")


def _parse_step(name, raw_job, node, pipeline_path, overrides) -> StepSpec:
    if not isinstance(raw_job, dict):
        raise PipelineSpecError(f"Step {name!r} must be a mapping with 'component:'.")
    job_type = raw_job.get("type", "command")
    if job_type != "command" or node is None:
        raise PipelineSpecError(
            f"Step {name!r} has type {job_type!r}: the local runner runs command "
            "steps only."
        )
    component = _component_spec(name, node, raw_job.get("component"), pipeline_path)
    raw_inputs = raw_job.get("inputs") or {}
    _check_declared(name, "input", raw_inputs, component.inputs, overrides)
    raw_outputs = raw_job.get("outputs") or {}
    _check_declared(name, "output", raw_outputs, component.outputs, overrides)
    step = StepSpec(
        name=name,
        component=component,
        inputs={
            key: _parse_node_input(name, key, value, component.inputs[key])
            for key, value in raw_inputs.items()
        },
        environment_variables={
            str(k): str(v)
            for k, v in (raw_job.get("environment_variables") or {}).items()
        },
    )
    for key, value in raw_outputs.items():
        _parse_node_output(step, key, value)
    return step


def _component_spec(step, node, raw_ref, pipeline_path: Path) -> ComponentSpec:
    component = node.component
    if isinstance(component, str) or getattr(component, "base_path", None) is None:
        raise PipelineSpecError(
            f"Step {step!r} references component {raw_ref!r}, which is not a local "
            "file. The local runner needs a path to a component YAML, for example "
            "'component: ../components/<stage>/component.yaml'."
        )
    source = Path(getattr(component, "_source_path", None) or pipeline_path)
    base = Path(component.base_path).resolve()
    code = component.code
    if code is not None and not isinstance(code, str):
        code = getattr(code, "path", None)
    code_dir = (base / code).resolve() if code else base
    if not code_dir.is_dir():
        raise PipelineSpecError(
            f"Step {step!r}: code folder {code_dir} of component {source} not found."
        )
    return ComponentSpec(
        name=component.name or step,
        source=source.resolve(),
        code_dir=code_dir,
        command=component.command or "",
        inputs={k: _input_spec(k, v) for k, v in component.inputs.items()},
        outputs={k: str(v.type) for k, v in component.outputs.items()},
    )


def _input_spec(name: str, declared) -> InputSpec:
    return InputSpec(
        name=name,
        type=str(declared.type),
        optional=bool(getattr(declared, "optional", False)),
        default=getattr(declared, "default", None),
        enum=getattr(declared, "enum", None),
        min=getattr(declared, "min", None),
        max=getattr(declared, "max", None),
    )


def _check_declared(step, kind, written: dict, declared: dict, overrides) -> None:
    if not isinstance(written, dict):
        raise PipelineSpecError(f"Step {step!r}: '{kind}s' must be a mapping.")
    for key in written:
        if key in declared:
            continue
        origin = f"jobs.{step}.{kind}s.{key}"
        via = f"--set {origin}: " if origin in overrides else ""
        raise PipelineSpecError(
            f"{via}Step {step!r} sets {kind} {key!r}, which its component does not "
            f"declare. Declared {kind}s: {', '.join(declared) or 'none'}. "
            "Fix the spelling or remove it."
        )


def _parse_node_input(step: str, key: str, value, declared: InputSpec):
    origin = f"jobs.{step}.inputs.{key}"
    if isinstance(value, dict):
        if "path" not in value:
            raise PipelineSpecError(
                f"Step {step!r} input {key!r}: a mapping needs 'path'. Got {value!r}."
            )
        inner = value["path"]
        if isinstance(inner, str) and inner.lstrip().startswith("${{"):
            return parse_binding(inner, origin)
        return PathValue(value.get("type") or declared.type, str(inner), origin)
    if isinstance(value, str) and "${{" in value:
        return parse_binding(value, origin)
    if value is not None and declared.type in PATH_TYPES:
        return PathValue(declared.type, str(value), origin)
    return value


def _parse_node_output(step: StepSpec, key: str, value) -> None:
    output_type = step.component.outputs[key]
    if isinstance(value, dict):
        if value.get("name"):
            step.registrations[key] = _asset_request(value, output_type)
        value = value.get("path")
    if value is None:
        return
    origin = f"jobs.{step.name}.outputs.{key}"
    binding = parse_binding(str(value), origin)
    if not (isinstance(binding, ParentBinding) and binding.kind == "outputs"):
        raise PipelineSpecError(
            f"Step {step.name!r} output {key!r} is bound to {value!r}: a step output "
            "can only be bound to a pipeline output, '${{parent.outputs.<name>}}'."
        )
    step.pipeline_outputs[key] = binding.name


def _asset_request(raw: dict, output_type: str) -> AssetRequest:
    version = raw.get("version")
    return AssetRequest(
        name=str(raw["name"]),
        version=None if version is None else str(version),
        type=str(raw.get("type") or output_type),
        description=str(raw.get("description") or ""),
    )


def _parse_pipeline_inputs(raw_inputs: dict) -> dict[str, Any]:
    parsed = {}
    for name, value in raw_inputs.items():
        if isinstance(value, dict):
            if "path" not in value:
                raise PipelineSpecError(
                    f"Pipeline input {name!r}: a mapping needs 'type' and 'path'. "
                    f"Got {value!r}."
                )
            parsed[name] = PathValue(
                value.get("type"), str(value["path"]), f"inputs.{name}"
            )
        else:
            parsed[name] = value
    return parsed


def _pipeline_outputs(raw_outputs: dict, steps) -> dict[str, PipelineOutputSpec]:
    outputs: dict[str, PipelineOutputSpec] = {}
    for step in steps.values():
        for step_output, name in step.pipeline_outputs.items():
            if name in outputs:
                first = outputs[name]
                raise PipelineSpecError(
                    f"Pipeline output {name!r} is bound twice: by step "
                    f"{first.step!r} output {first.step_output!r} and by step "
                    f"{step.name!r} output {step_output!r}. Bind it once."
                )
            output_type = step.component.outputs[step_output]
            raw = raw_outputs.get(name) or {}
            outputs[name] = PipelineOutputSpec(
                name=name,
                type=str(raw.get("type") or output_type),
                step=step.name,
                step_output=step_output,
                asset=_asset_request(raw, output_type) if raw.get("name") else None,
            )
    for name in raw_outputs:
        if name not in outputs:
            raise PipelineSpecError(
                f"Pipeline output {name!r} is not bound by any step. Bind it in a "
                f"step's outputs as '<output>: ${{{{parent.outputs.{name}}}}}', or "
                "remove it."
            )
    return outputs


def input_values(step: StepSpec, pipeline_inputs: dict) -> dict[str, Any]:
    """Return every declared input of ``step`` mapped to its unresolved value.

    Bindings to pipeline inputs are replaced by the pipeline input's value,
    unset inputs take the component default, and inputs without any value map
    to None. StepOutput and PathValue values are left for the runner.
    """
    values = {}
    for name, declared in step.component.inputs.items():
        value = step.inputs.get(name)
        if isinstance(value, ParentBinding):
            value = pipeline_inputs.get(value.name)
            if isinstance(value, str) and declared.type in PATH_TYPES:
                value = PathValue(
                    declared.type, value, f"inputs.{step.inputs[name].name}"
                )
        if value is None:
            value = declared.default
        values[name] = value
    return values


def _check_values(step: StepSpec, pipeline_inputs: dict) -> None:
    for name, value in input_values(step, pipeline_inputs).items():
        declared = step.component.inputs[name]
        if value is None:
            if not declared.optional:
                raise PipelineSpecError(
                    f"Step {step.name!r} is missing required input {name!r} "
                    f"({declared.type}). Set it under 'jobs.{step.name}.inputs' or "
                    f"with --set jobs.{step.name}.inputs.{name}=VALUE."
                )
            continue
        if isinstance(value, (StepOutput, PathValue)):
            continue
        check_literal(f"Step {step.name!r} input {name!r}", declared, value)


def _check_command(step: StepSpec, pipeline_inputs: dict) -> None:
    given = input_values(step, pipeline_inputs)
    values = {name: None if value is None else "value" for name, value in given.items()}
    outputs = dict.fromkeys(step.component.outputs, "path")
    try:
        command_text.render(step.component.command, values, outputs)
        command_text.check_shell_text(step.component.command, given)
    except command_text.CommandRenderError as exc:
        raise PipelineSpecError(
            f"Step {step.name!r} (component {step.component.source}): {exc}"
        ) from exc
