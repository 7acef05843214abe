"""Offline checks of the data asset component specs and the pipeline YAML."""

from __future__ import annotations

import re

import pytest
import yaml

from plant2edge import settings

ROOT = settings.repo_root()
STAGES = ["ingest_data", "validate_data", "profile_data", "register_data"]
PIPELINE = ROOT / "pipelines" / "data_asset.yaml"
BINDING = re.compile(r"^\$\{\{parent\.(inputs|jobs)\.([\w.]+)\}\}$")


def load_yaml(path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("stage", STAGES)
def test_component_loads_and_validates(stage):
    from azure.ai.ml import load_component

    component = load_component(ROOT / "components" / stage / "component.yaml")
    result = component._validate()

    assert result.passed, result.error_messages
    assert component.name == f"plant2edge_{stage}"
    assert component.version == "1"


@pytest.mark.parametrize("stage", STAGES)
def test_component_describes_every_port(stage):
    spec = load_yaml(ROOT / "components" / stage / "component.yaml")

    for kind in ("inputs", "outputs"):
        for name, port in spec[kind].items():
            assert port.get("description"), f"{stage} {kind}.{name} has no description"


@pytest.mark.parametrize("stage", ["ingest_data", "register_data"])
def test_external_steps_are_not_deterministic(stage):
    spec = load_yaml(ROOT / "components" / stage / "component.yaml")

    assert spec["is_deterministic"] is False


def test_pipeline_loads_and_validates():
    from azure.ai.ml import load_job

    job = load_job(PIPELINE)
    result = job._validate()

    assert result.passed, result.error_messages
    assert job.settings.default_compute == "cpu-cluster"
    assert set(job.outputs) == {"validation_report", "profile_report", "asset_info"}
    assert job.inputs["raw_data"].path.startswith("https://github.com/siemens/")


def test_pipeline_bindings_exist():
    """Check what azure-ai-ml does not: node port names and binding targets."""
    pipeline = load_yaml(PIPELINE)
    components = {
        step: load_yaml((PIPELINE.parent / job["component"]).resolve())
        for step, job in pipeline["jobs"].items()
    }

    for step, job in pipeline["jobs"].items():
        component = components[step]
        for name, value in job.get("inputs", {}).items():
            assert name in component["inputs"], f"{step} has no input {name}"
            match = BINDING.match(str(value))
            assert match, f"{step}.inputs.{name} is not a parent binding: {value}"
            kind, target = match.groups()
            if kind == "inputs":
                assert target in pipeline["inputs"], f"unknown pipeline input {target}"
            else:
                source_step, _, output = target.split(".")
                assert output in components[source_step]["outputs"], target
        for name, value in job.get("outputs", {}).items():
            assert name in component["outputs"], f"{step} has no output {name}"
            assert (
                value.removeprefix("${{parent.outputs.").removesuffix("}}")
                in (pipeline["outputs"])
            )
