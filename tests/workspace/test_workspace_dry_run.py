"""`plant2edge workspace register|submit --dry-run`: the exact requests, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plant2edge import workspace_client
from plant2edge.workspace import main
from plant2edge.workspace_assets import FINGERPRINT_TAG, load_assets
from plant2edge.workspace_client import WORKSPACE_ENV, WorkspaceError
from plant2edge.workspace_submit import parse_overrides

REPO = Path(__file__).parent / "fixtures" / "repo"
COMPONENT = REPO / "components" / "clean_step"


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch):
    """Fail the test if anything tries to sign in or reach a workspace."""
    for name in WORKSPACE_ENV:
        monkeypatch.delenv(name, raising=False)

    def reject_call(*args, **kwargs):
        raise AssertionError("a dry run must not create a credential or client")

    monkeypatch.setattr("azure.identity.DefaultAzureCredential", reject_call)
    monkeypatch.setattr("azure.ai.ml.MLClient", reject_call)
    monkeypatch.setattr(workspace_client, "connect", reject_call)
    monkeypatch.setattr("plant2edge.workspace.connect", reject_call)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_register_dry_run_writes_environment_and_component(tmp_path, capsys):
    out = tmp_path / "requests"

    code = main(["register", "--dry-run", "--out", str(out), "--repo", str(REPO)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines == [
        "dry-run   environment plant2edge-clean-step:2",
        "dry-run   component plant2edge_clean_step:3",
        f"2 requests written to {out}",
    ]
    environment = read(out / "environments" / "plant2edge-clean-step-2.json")
    assert environment["entity"]["image"] == (
        "mcr.microsoft.com/azureml/openmpi5.0-ubuntu24.04:20260901.v1"
    )
    assert environment["entity"]["conda_file"]["dependencies"][0] == "python=3.11"
    assert (
        environment["rest_body"]["properties"]["image"]
        == environment["entity"]["image"]
    )
    assert "pandas==3.1.1" in environment["rest_body"]["properties"]["condaFile"]


def test_register_dry_run_component_request_holds_local_code(tmp_path):
    out = tmp_path / "requests"

    main(["register", "--dry-run", "--out", str(out), "--repo", str(REPO)])

    component = read(out / "components" / "plant2edge_clean_step-3.json")
    spec = component["rest_body"]["properties"]["componentSpec"]
    assert component["name"] == "plant2edge_clean_step"
    assert component["version"] == "3"
    assert component["code"] == str(COMPONENT)
    assert component["entity"]["code"] == str(COMPONENT)
    assert spec["version"] == "3"
    assert spec["inputs"]["window_size"]["default"] == "300"
    assert spec["tags"][FINGERPRINT_TAG] == component["fingerprint"]
    assert len(component["fingerprint"]) == 64


def test_register_dry_run_replaces_previous_output(tmp_path):
    out = tmp_path / "requests"
    out.mkdir()
    (out / "stale.json").write_text("{}")

    main(["register", "--dry-run", "--out", str(out), "--repo", str(REPO)])

    assert not (out / "stale.json").exists()
    assert read(out / "summary.json")["assets"][1]["name"] == "plant2edge_clean_step"


def test_register_dry_run_covers_every_repository_component(repo_root, tmp_path):
    out = tmp_path / "requests"

    code = main(["register", "--dry-run", "--out", str(out), "--repo", str(repo_root)])

    assert code == 0
    summary = read(out / "summary.json")["assets"]
    registered = {(a["kind"], a["source"]) for a in summary}
    for spec in repo_root.glob("components/*/component.yaml"):
        assert ("component", str(spec)) in registered
    for spec in repo_root.glob("environments/*.yaml"):
        assert ("environment", str(spec)) in registered


def test_component_fingerprint_changes_with_code(tmp_path):
    copy = tmp_path / "repo"
    import shutil

    shutil.copytree(REPO, copy)
    before = load_assets(copy)[1].fingerprint
    script = copy / "components" / "clean_step" / "clean_step.py"
    script.write_text(script.read_text() + "\n# changed\n")

    after = load_assets(copy)[1].fingerprint

    assert before != after
    assert load_assets(REPO)[1].fingerprint == before


def test_submit_dry_run_applies_overrides(tmp_path, capsys):
    out = tmp_path / "submit"

    code = main(
        [
            "submit",
            "--pipeline",
            str(REPO / "pipelines" / "demo.yaml"),
            "--set",
            "inputs.window_size=120",
            "--set",
            "inputs.data.path=azureml:state-identifier-data:7",
            "--dry-run",
            "--out",
            str(out),
            "--repo",
            str(REPO),
        ]
    )

    printed = capsys.readouterr().out
    request = read(out / "job.json")
    inputs = request["rest_body"]["properties"]["inputs"]
    assert code == 0
    assert "pipeline demo.yaml: 1 steps, experiment demo-experiment" in printed
    assert inputs["window_size"] == {"value": "120", "jobInputType": "literal"}
    assert inputs["data"]["uri"] == "state-identifier-data:7"
    assert request["summary"]["inputs"]["window_size"] == "120"
    assert request["rest_body"]["properties"]["experimentName"] == "demo-experiment"


def test_submit_dry_run_request_names_local_component(tmp_path):
    out = tmp_path / "submit"

    main(
        [
            "submit",
            "--pipeline",
            "demo",
            "--dry-run",
            "--out",
            str(out),
            "--repo",
            str(REPO),
            "--experiment",
            "nightly",
        ]
    )

    request = read(out / "job.json")
    step = request["summary"]["steps"]["clean"]
    assert step["component"] == str(COMPONENT / "component.yaml")
    assert step["code"] == str(COMPONENT)
    assert request["entity"]["jobs"]["clean"]["component"]["code"] == str(COMPONENT)
    component = request["rest_body"]["properties"]["jobs"]["clean"]["componentId"]
    assert component["command"].startswith("python clean_step.py")
    assert component["code"] == str(COMPONENT)
    assert request["summary"]["experiment_name"] == "nightly"


def test_submit_rejects_unknown_input(tmp_path, capsys):
    code = main(
        [
            "submit",
            "--pipeline",
            "demo",
            "--dry-run",
            "--out",
            str(tmp_path),
            "--repo",
            str(REPO),
            "--set",
            "inputs.window=5",
        ]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert (
        "--set inputs.window: the pipeline has no input 'window'. Did you mean "
        "'window_size'?" in err
    )


def test_submit_rejects_value_the_component_rejects(tmp_path, capsys):
    code = main(
        [
            "submit",
            "--pipeline",
            "demo",
            "--dry-run",
            "--out",
            str(tmp_path),
            "--repo",
            str(REPO),
            "--set",
            "inputs.window_size=1",
        ]
    )

    err = capsys.readouterr().err
    assert code == 1
    assert "pipeline input 'window_size' = '1' is below the minimum 2" in err
    assert "--skip-validate" in err


def test_submit_rejects_unknown_pipeline(capsys):
    code = main(["submit", "--pipeline", "trainig", "--dry-run", "--repo", str(REPO)])

    assert code == 1
    assert "pipeline 'trainig' not found" in capsys.readouterr().err


def test_parse_overrides_rejects_missing_equals():
    with pytest.raises(WorkspaceError, match=r"--set 'inputs\.x' is not KEY=VALUE"):
        parse_overrides(["inputs.x"])


def test_parse_overrides_keeps_values_as_strings():
    assert parse_overrides(["inputs.a=1", "inputs.b=x=y"]) == {
        "inputs.a": "1",
        "inputs.b": "x=y",
    }
