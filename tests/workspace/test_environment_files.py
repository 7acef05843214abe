"""environments/<stage>.yaml: one registered environment per component."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plant2edge import settings
from plant2edge.validate_sdk import load_entity
from plant2edge.validate_yaml import is_plain_string, load_yaml
from plant2edge.workspace import main
from plant2edge.workspace_environments import BASE_IMAGE, component_stages

REPO = settings.repo_root()
STAGES = component_stages(REPO)
FIXTURE_REPO = Path(__file__).parent / "fixtures" / "repo"


@pytest.mark.parametrize("stage", STAGES)
def test_component_has_environment_file(stage):
    path = REPO / "environments" / f"{stage}.yaml"
    assert path.is_file(), f"run: plant2edge workspace sync-environments ({path})"
    doc = load_yaml(path)
    environment = load_entity("environment", path)

    assert doc.data["name"] == "plant2edge-" + stage.replace("_", "-")
    assert is_plain_string(doc.node("version")), "quote the version"
    assert doc.data["image"] == BASE_IMAGE
    assert doc.data["conda_file"] == f"../components/{stage}/conda.yaml"
    assert (path.parent / doc.data["conda_file"]).resolve().is_file()
    assert (
        environment.conda_file
        == load_yaml(REPO / "components" / stage / "conda.yaml").data
    )


def test_environment_files_belong_to_components():
    orphans = [
        path.name
        for path in (REPO / "environments").glob("*.yaml")
        if path.stem not in STAGES
    ]

    assert orphans == []


def test_sync_environments_writes_only_missing_files(tmp_path, capsys):
    repo = tmp_path / "repo"
    shutil.copytree(FIXTURE_REPO, repo)
    second = repo / "components" / "second_step"
    shutil.copytree(repo / "components" / "clean_step", second)
    existing = (repo / "environments" / "clean_step.yaml").read_text()

    code = main(["sync-environments", "--repo", str(repo)])

    assert code == 0
    assert capsys.readouterr().out == "1 environment files written\n"
    assert (repo / "environments" / "clean_step.yaml").read_text() == existing
    written = load_yaml(repo / "environments" / "second_step.yaml")
    assert written.data == {
        "$schema": "https://azuremlschemas.azureedge.net/latest/environment.schema.json",
        "name": "plant2edge-second-step",
        "version": "1",
        "description": "Python and pinned packages of components/second_step.",
        "image": BASE_IMAGE,
        "conda_file": "../components/second_step/conda.yaml",
    }
    assert is_plain_string(written.node("version"))
