"""End-to-end runs of the fixture pipelines with a real MLflow SQLite store."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from plant2edge import settings
from plant2edge.assets import LocalDataStore
from plant2edge.runner import (
    InputResolutionError,
    StepFailedError,
    main,
    run_pipeline,
)

pytestmark = pytest.mark.usefixtures("mlflow_db")


def read_args(result, step: str) -> dict:
    return json.loads((result.steps[step].outputs["out"] / "args.json").read_text())


def test_chain_runs_in_binding_order(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "chain.yaml", stream_logs=False)

    assert result.status == "Completed"
    assert result.failed_step is None
    run = json.loads((result.run_dir / "run.json").read_text())
    assert list(run["steps"]) == ["write", "shout", "report"]
    assert result.outputs["shout"].read_text() == "HELLO RUNNER\n"
    report = read_args(result, "report")
    assert report["file_text"] == "HELLO RUNNER\n"
    assert report["data_files"] == ["text.txt"]


def test_run_folder_layout(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "chain.yaml", stream_logs=False)

    assert result.run_dir.parent == p2e_home / "runs"
    assert result.run_dir.name.startswith("chain-")
    write = result.run_dir / "write"
    assert (write / "logs" / "stdout.txt").is_file()
    assert (write / "logs" / "stderr.txt").is_file()
    assert (
        write / "outputs" / "text_file" / "text_file"
    ).read_text() == "hello runner\n"
    assert (write / "outputs" / "text_folder" / "text.txt").is_file()
    assert not (write / ".staging").exists()
    assert "echo hello runner >" in (write / "command.sh").read_text()
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["status"] == "Completed"
    assert run["steps"]["write"]["status"] == "Completed"
    assert run["steps"]["write"]["duration_s"] >= 0
    assert run["inputs"] == {"greeting": "hello runner"}
    assert "env" not in json.dumps(run["steps"]).lower()


def test_step_uses_component_folder_and_venv(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "options.yaml", stream_logs=False)

    args = read_args(result, "full")
    component_dir = pipelines_dir.parent / "components" / "echo_args"
    assert Path(args["cwd"]) == component_dir.resolve()
    assert Path(args["python"]).parent == Path(sys.prefix) / "bin"
    assert args["env"]["PLANT2EDGE_HOME"] == str(p2e_home)
    assert args["env"]["PLANT2EDGE_DATA_ASSETS"] == str(p2e_home / "data-assets")
    assert args["env"]["MLFLOW_TRACKING_URI"] == f"sqlite:///{p2e_home / 'mlflow.db'}"
    assert args["env"]["FIXTURE_GREETING"] == "hello from the node"


def test_optional_blocks_and_booleans(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "options.yaml", stream_logs=False)

    full = " ".join(read_args(result, "full")["argv"])
    bare = " ".join(read_args(result, "bare")["argv"])
    assert full.startswith("--message hi --count 7 --ratio 0.25 --verbose True ")
    assert "--mode slow --out " in full
    assert bare.startswith("--message hi --count 3 --verbose False --mode fast --out ")
    assert "--ratio" not in bare
    assert "--data" not in bare


def test_set_overrides_both_input_levels(pipelines_dir, p2e_home):
    result = run_pipeline(
        pipelines_dir / "options.yaml",
        {
            "inputs.message": "overridden",
            "inputs.verbose": "false",
            "jobs.bare.inputs.ratio": "1.5",
            "jobs.full.inputs.count": "11",
        },
        stream_logs=False,
    )

    full = " ".join(read_args(result, "full")["argv"])
    bare = " ".join(read_args(result, "bare")["argv"])
    assert full.startswith(
        "--message overridden --count 11 --ratio 0.25 --verbose False"
    )
    assert bare.startswith("--message overridden --count 3 --ratio 1.5 --verbose False")
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["overrides"]["jobs.full.inputs.count"] == "11"


def test_path_override_accepts_path_object(pipelines_dir, p2e_home, tmp_path):
    note = tmp_path / "absolute note.txt"
    note.write_text("from a Path")

    result = run_pipeline(
        pipelines_dir / "paths.yaml", {"inputs.note": note}, stream_logs=False
    )

    assert read_args(result, "echo")["file_text"] == "from a Path"


def test_local_paths_relative_to_pipeline(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "paths.yaml", stream_logs=False)

    args = read_args(result, "echo")
    assert args["data_files"] == ["a.txt", "b.txt"]
    assert args["file_text"] == "local note\n"


@pytest.fixture
def registered_assets(p2e_home, tmp_path):
    store = LocalDataStore()
    folder = tmp_path / "asset-folder"
    folder.mkdir()
    (folder / "v1.txt").write_text("one")
    store.register("fixture-folder", folder, "uri_folder")
    (folder / "v2.txt").write_text("two")
    store.register("fixture-folder", folder, "uri_folder")
    for text in ("first note", "second note"):
        note = tmp_path / "note.txt"
        note.write_text(text)
        store.register("fixture-note", note, "uri_file")
    return store


def test_data_asset_version_and_latest(pipelines_dir, registered_assets):
    result = run_pipeline(
        pipelines_dir / "paths.yaml",
        {
            "inputs.folder": "azureml:fixture-folder:1",
            "inputs.note": "azureml:fixture-note@latest",
        },
        stream_logs=False,
    )

    args = read_args(result, "echo")
    assert args["data_files"] == ["v1.txt"]
    assert args["file_text"] == "second note"
    run = json.loads((result.run_dir / "run.json").read_text())
    sources = run["input_sources"]
    assert sources["jobs.echo.inputs.data"] == {"data_asset": "fixture-folder:1"}
    assert sources["jobs.echo.inputs.file"] == {"data_asset": "fixture-note:2"}


def test_unknown_asset_version_lists_versions(pipelines_dir, registered_assets):
    with pytest.raises(
        InputResolutionError,
        match=r"'fixture-folder' has no version '9'. Versions: 1, 2",
    ):
        run_pipeline(
            pipelines_dir / "paths.yaml",
            {"inputs.folder": "azureml:fixture-folder:9"},
            stream_logs=False,
        )
    (run_dir,) = (settings.runs_dir()).iterdir()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "Failed"
    assert run["steps"]["echo"]["status"] == "Skipped"


def test_data_asset_of_wrong_type_rejected(pipelines_dir, registered_assets):
    with pytest.raises(InputResolutionError, match=r"fixture-note:2 is a uri_file"):
        run_pipeline(
            pipelines_dir / "paths.yaml",
            {"inputs.folder": "azureml:fixture-note@latest"},
            stream_logs=False,
        )


def test_missing_local_path_rejected(pipelines_dir, p2e_home):
    with pytest.raises(InputResolutionError, match=r"missing-folder not found"):
        run_pipeline(
            pipelines_dir / "paths.yaml",
            {"inputs.folder.path": "../data/missing-folder"},
            stream_logs=False,
        )


def test_url_input_downloaded(pipelines_dir, p2e_home, http_server):
    served, base_url = http_server
    (served / "remote.txt").write_text("served over http")

    result = run_pipeline(
        pipelines_dir / "paths.yaml",
        {"inputs.note": f"{base_url}/remote.txt?sig=secret-token"},
        stream_logs=False,
    )

    args = read_args(result, "echo")
    assert args["file_text"] == "served over http"
    downloaded = result.run_dir / "inputs" / "inputs.note" / "remote.txt"
    assert downloaded.read_text() == "served over http"
    run_text = (result.run_dir / "run.json").read_text()
    assert "secret-token" not in run_text
    assert f"{base_url}/remote.txt?<redacted>" in run_text


def test_url_input_404_names_the_url(pipelines_dir, p2e_home, http_server):
    _, base_url = http_server

    with pytest.raises(
        InputResolutionError,
        match=rf"Download of {base_url}/missing.txt failed: HTTP 404",
    ):
        run_pipeline(
            pipelines_dir / "paths.yaml",
            {"inputs.note": f"{base_url}/missing.txt"},
            stream_logs=False,
        )


def test_failed_step_keeps_earlier_outputs(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "fail_middle.yaml", stream_logs=False)

    assert result.status == "Failed"
    assert result.failed_step == "fail"
    assert result.steps["write"].status == "Completed"
    assert result.steps["fail"].status == "Failed"
    assert result.steps["fail"].exit_code == 3
    assert result.steps["shout"].status == "Skipped"
    write_output = result.run_dir / "write" / "outputs" / "text_file" / "text_file"
    assert write_output.read_text() == "before the failure\n"
    assert not (result.run_dir / "fail" / "outputs").exists()
    assert not (result.run_dir / "fail" / ".staging").exists()
    partial = result.run_dir / "fail" / "failed-outputs" / "result" / "result"
    assert partial.read_text() == "before the failure\n"
    assert f"What it wrote before failing: {partial.parents[1]}" in result.error
    assert not (result.run_dir / "shout").exists()
    assert "problem line 30" in result.error
    assert "problem line 10" not in result.error
    with pytest.raises(StepFailedError, match=r"fail failed \(exit code 3\)"):
        result.raise_for_status()


def test_cli_failure_prints_stderr_tail(pipelines_dir, p2e_home, capsys):
    exit_code = main([str(pipelines_dir / "fail_middle.yaml"), "--quiet"])

    err = capsys.readouterr().err
    assert exit_code == 1
    assert "[step 2/3] fail failed (exit code 3)" in err
    assert "Last 20 lines of its stderr:" in err
    assert "  | problem line 11" in err
    assert "  | problem line 10\n" not in err
    assert "fail/logs/stderr.txt" in err
    assert "Inspect it with: less " in err
    assert "[step 3/3] shout skipped" in err


def test_cli_reports_progress_per_step(pipelines_dir, p2e_home, capsys):
    exit_code = main([str(pipelines_dir / "chain.yaml"), "--quiet"])

    captured = capsys.readouterr()
    assert exit_code == 0
    assert "[step 1/3] write started" in captured.err
    assert "[step 3/3] report finished in " in captured.err
    assert "Run Completed:" in captured.out


def test_cli_invalid_set_exits_2(pipelines_dir, p2e_home, capsys):
    exit_code = main([str(pipelines_dir / "options.yaml"), "--set", "inputs.nope=1"])

    assert exit_code == 2
    assert "Pipeline inputs: message, verbose, ratio" in capsys.readouterr().err


def test_cli_run_dir_option(pipelines_dir, p2e_home, tmp_path, capsys):
    run_dir = tmp_path / "my-run"

    exit_code = main(
        [str(pipelines_dir / "options.yaml"), "--quiet", "--run-dir", str(run_dir)]
    )

    assert exit_code == 0
    assert (run_dir / "run.json").is_file()
    assert (run_dir / "bare" / "outputs" / "out" / "args.json").is_file()


def test_step_output_streams_to_console(pipelines_dir, p2e_home, capfd):
    run_pipeline(pipelines_dir / "fail_middle.yaml")

    assert "problem line 1\n" in capfd.readouterr().err


def test_named_outputs_registered_as_assets(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "register.yaml", stream_logs=False)

    assert result.registered == {
        "greeting_folder": "fixture-greeting:1",
        "greeting_file": "fixture-greeting-file:5",
    }
    store = LocalDataStore()
    version, folder = store.resolve("fixture-greeting", "latest")
    assert version == "1"
    assert (folder / "text.txt").read_text() == "registered text\n"
    asset = store.get("fixture-greeting", "1")
    assert asset["type"] == "uri_folder"
    assert asset["tags"]["pipeline"] == "register"
    _, file_path = store.resolve("fixture-greeting-file", "5")
    assert file_path.read_text() == "registered text\n"


def test_existing_output_version_rejected(pipelines_dir, p2e_home):
    run_pipeline(pipelines_dir / "register.yaml", stream_logs=False)

    with pytest.raises(
        InputResolutionError, match=r"fixture-greeting-file:5, which already exists"
    ):
        run_pipeline(pipelines_dir / "register.yaml", stream_logs=False)
    assert LocalDataStore().list_versions("fixture-greeting") == ["1"]


def test_mlflow_child_runs_have_parent(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "mlflow_steps.yaml", stream_logs=False)

    assert result.status == "Completed"
    client = MlflowClient(settings.tracking_uri())
    experiment = client.get_experiment_by_name("runner-fixture-mlflow")
    assert experiment.experiment_id == result.experiment_id
    assert experiment.artifact_location.startswith((settings.artifacts_root()).as_uri())
    parent = client.get_run(result.mlflow_run_id)
    assert parent.info.status == "FINISHED"
    for step, value in (("first", 1.5), ("second", 2.5)):
        seen = json.loads(result.steps[step].outputs["run_info"].read_text())
        assert seen["run_id"] == result.steps[step].mlflow_run_id
        assert seen["experiment_id"] == result.experiment_id
        child = client.get_run(seen["run_id"])
        assert child.data.tags["mlflow.parentRunId"] == result.mlflow_run_id
        assert child.data.metrics["value"] == value
        assert child.info.status == "FINISHED"
        assert child.info.run_name == step


def test_mlflow_failed_step_run_failed(pipelines_dir, p2e_home):
    result = run_pipeline(pipelines_dir / "fail_middle.yaml", stream_logs=False)

    client = MlflowClient(settings.tracking_uri())
    assert client.get_run(result.steps["write"].mlflow_run_id).info.status == "FINISHED"
    assert client.get_run(result.steps["fail"].mlflow_run_id).info.status == "FAILED"
    assert result.steps["shout"].mlflow_run_id is None
    assert client.get_run(result.mlflow_run_id).info.status == "FAILED"


def test_secret_inputs_redacted(write_pipeline, p2e_home):
    path = write_pipeline(
        "inputs:\n  api_token: not-for-logs-123\n"
        "jobs:\n"
        "  write:\n"
        "    type: command\n"
        "    component: {components}/write_text/component.yaml\n"
        "    inputs:\n"
        "      text: ${{parent.inputs.api_token}}\n"
    )

    result = run_pipeline(path, stream_logs=False)

    assert (
        result.steps["write"].outputs["text_file"].read_text() == "not-for-logs-123\n"
    )
    run_text = (result.run_dir / "run.json").read_text()
    command_text = (result.run_dir / "write" / "command.sh").read_text()
    assert "not-for-logs-123" not in run_text
    assert "not-for-logs-123" not in command_text
    assert "echo <redacted> >" in command_text


def test_model_output_registered_and_resolved(write_pipeline, p2e_home):
    producer = write_pipeline(
        "jobs:\n"
        "  write:\n"
        "    type: command\n"
        "    component: {components}/write_text/component.yaml\n"
        "    inputs:\n"
        "      text: model weights\n"
        "    outputs:\n"
        "      text_folder:\n"
        "        type: mlflow_model\n"
        "        name: fixture-model\n",
        name="producer.yaml",
    )
    consumer = write_pipeline(
        "inputs:\n"
        "  model:\n"
        "    type: mlflow_model\n"
        "    path: azureml:fixture-model@latest\n"
        "jobs:\n"
        "  echo:\n"
        "    type: command\n"
        "    component: {components}/echo_args/component.yaml\n"
        "    inputs:\n"
        "      message: model\n"
        "      data: ${{parent.inputs.model}}\n",
        name="consumer.yaml",
    )

    first = run_pipeline(producer, stream_logs=False)
    second = run_pipeline(producer, stream_logs=False)
    result = run_pipeline(consumer, stream_logs=False)

    assert first.registered == {"write.text_folder": "fixture-model:1"}
    assert second.registered == {"write.text_folder": "fixture-model:2"}
    args = read_args(result, "echo")
    assert args["data_files"] == ["text.txt"]
    assert Path(args["argv"][args["argv"].index("--data") + 1]).is_relative_to(
        result.run_dir / "inputs"
    )
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["input_sources"]["jobs.echo.inputs.data"] == {"model": "fixture-model:2"}


def test_unknown_model_version_lists_versions(write_pipeline, p2e_home, tmp_path):
    client = MlflowClient(settings.tracking_uri())
    client.create_registered_model("fixture-model")
    weights = tmp_path / "weights"
    weights.mkdir()
    client.create_model_version("fixture-model", source=weights.as_uri())
    path = write_pipeline(
        "inputs:\n"
        "  model:\n"
        "    type: mlflow_model\n"
        "    path: azureml:fixture-model:3\n"
        "jobs:\n"
        "  echo:\n"
        "    type: command\n"
        "    component: {components}/echo_args/component.yaml\n"
        "    inputs:\n"
        "      message: model\n"
        "      data: ${{parent.inputs.model}}\n"
    )

    with pytest.raises(
        InputResolutionError, match=r"'fixture-model' has no version '3'. Versions: 1\."
    ):
        run_pipeline(path, stream_logs=False)


def test_background_process_of_step_stopped(write_pipeline, p2e_home):
    path = write_pipeline(
        "jobs:\n"
        "  spawn:\n"
        "    type: command\n"
        "    component:\n"
        "      type: command\n"
        "      command: sleep 300 >/dev/null 2>&1 & echo $! > pid.txt; echo spawned\n"
        "      environment:\n"
        "        image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
    )

    result = run_pipeline(path, stream_logs=False)

    assert result.status == "Completed"
    stdout = (result.steps["spawn"].log_dir / "stdout.txt").read_text()
    assert stdout == "spawned\n"
    leftover = int((path.parent / "pid.txt").read_text())
    deadline = time.monotonic() + 10  # SIGTERM takes effect asynchronously
    while process_state(leftover) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_state(leftover) in (None, "Z")


def process_state(pid: int) -> str | None:
    """Return the state letter of a process, or None when it no longer exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]
