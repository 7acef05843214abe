"""Build the pipeline job that ``plant2edge workspace submit`` sends to Azure ML."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from plant2edge.validate import Validator
from plant2edge.validate_common import did_you_mean, names
from plant2edge.validate_sdk import load_entity, quiet_sdk
from plant2edge.validate_yaml import YamlError, load_yaml
from plant2edge.workspace_client import WorkspaceError

logger = logging.getLogger(__name__)


def resolve_pipeline(repo: Path, name: str) -> Path:
    """Return ``pipelines/<name>.yaml``, or ``name`` itself when it is a YAML file."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate.resolve()
    path = repo / "pipelines" / f"{name}.yaml"
    if path.is_file():
        return path
    available = sorted(item.stem for item in (repo / "pipelines").glob("*.yaml"))
    raise WorkspaceError(
        f"pipeline {name!r} not found: {path} does not exist."
        + did_you_mean(name, available)
        + f" Available: {names(available)}"
    )


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """Turn ``--set key=value`` arguments into ``{key: value}``, values as strings.

    ``az ml job create --set`` passes each pair to azure-ai-ml as
    ``params_override=[{key: value}]`` the same way, so ``inputs.x=3`` sets the
    string ``"3"``.
    """
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise WorkspaceError(
                f"--set {pair!r} is not KEY=VALUE; write e.g. --set inputs.window_size=300"
            )
        overrides[key.strip()] = value
    return overrides


def check_override_keys(data: dict, overrides: dict[str, str]) -> None:
    """Reject ``inputs.x`` and ``jobs.x`` overrides that name nothing in the pipeline.

    azure-ai-ml adds an unknown pipeline input silently, and no step reads it.
    """
    for key in overrides:
        parts = key.split(".")
        section = parts[0]
        if section not in ("inputs", "outputs", "jobs") or len(parts) < 2:
            continue
        declared = data.get(section) or {}
        if parts[1] not in declared:
            raise WorkspaceError(
                f"--set {key}: the pipeline has no {section[:-1]} {parts[1]!r}."
                + did_you_mean(parts[1], declared)
                + f" Its {section}: {names(declared)}"
            )


def apply_overrides(data: dict, overrides: dict[str, str]) -> dict:
    """Return a copy of ``data`` with each dotted key set, as azure-ai-ml does."""
    result = copy.deepcopy(data)
    for key, value in overrides.items():
        target = result
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[parts[-1]] = value
    return result


def build_job(
    path: Path,
    overrides: dict[str, str],
    experiment: str | None = None,
    skip_validate: bool = False,
):
    """Load the pipeline job with overrides, after the checks of ``plant2edge validate``."""
    try:
        doc = load_yaml(path)
    except YamlError as exc:
        raise WorkspaceError(f"{path}:{exc.line}: {exc}") from exc
    check_override_keys(doc.data or {}, overrides)
    if not skip_validate:
        doc.data = apply_overrides(doc.data or {}, overrides)
        findings = Validator().check(doc, "pipeline")
        if findings:
            listing = "\n".join(finding.format(Path.cwd()) for finding in findings)
            raise WorkspaceError(
                f"plant2edge validate reports {len(findings)} findings for "
                f"{path.name} with the --set values applied:\n{listing}\nFix them, "
                "or pass --skip-validate to submit anyway"
            )
    params = [{key: value} for key, value in overrides.items()]
    try:
        job = load_entity("pipeline", path, params_override=params)
    except Exception as exc:
        raise WorkspaceError(f"azure-ai-ml could not load {path}: {exc}") from exc
    job.experiment_name = experiment or job.experiment_name or f"plant2edge-{path.stem}"
    return job


def job_summary(spec: dict, rest: dict, job, path: Path) -> dict:
    """Return the parts of a job a person checks before submitting it.

    Input values come from the REST body, because the entity's ``_to_dict()`` in
    azure-ai-ml 1.35 turns a boolean ``false`` into ``0``.
    """
    steps = {}
    for name, node in job.jobs.items():
        source = getattr(node.component, "_source_path", None)
        code = (spec["jobs"][name].get("component") or {}).get("code")
        steps[name] = {
            "component": str(Path(source).resolve()) if source else str(node.component),
            "code": code,
        }
    inputs = {}
    for name, value in (rest["properties"].get("inputs") or {}).items():
        kind = value.get("jobInputType")
        inputs[name] = (
            value.get("value")
            if kind == "literal"
            else {
                "type": kind,
                "path": value.get("uri"),
            }
        )
    return {
        "pipeline": str(path),
        "experiment_name": job.experiment_name,
        "display_name": job.display_name,
        "inputs": inputs,
        "settings": spec.get("settings", {}),
        "steps": steps,
    }


def job_request(job, path: Path) -> dict:
    """Return the summary, the entity and the REST body that submission sends."""
    with quiet_sdk():
        entity = job._to_dict()
        rest = job._to_rest_object().as_dict()
    summary = job_summary(entity, rest, job, path)
    return {"summary": summary, "entity": entity, "rest_body": rest}


def submit(client, job, wait: bool = False):
    """Submit ``job``; print its studio URL; stream its log when ``wait`` is set."""
    created = client.jobs.create_or_update(job, experiment_name=job.experiment_name)
    print(f"submitted {created.name} to experiment {job.experiment_name}")
    print(f"studio: {created.studio_url}")
    if wait:
        client.jobs.stream(created.name)
    return created
