"""Bad settings, interrupted runs and odd values given to the local runner."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from plant2edge import runner, settings
from plant2edge.assets import DataAssetError, LocalDataStore
from plant2edge.local.command import CommandRenderError, check_shell_text
from plant2edge.local.errors import PipelineError
from plant2edge.local.inputs import download
from plant2edge.local.spec import InputSpec
from plant2edge.local.tracking import Tracking
from plant2edge.local.values import check_literal

ECHO_PIPELINE = """\
inputs:
  text: hello
jobs:
  echo:
    type: command
    component: {components}/echo/component.yaml
    inputs:
      text: ${{parent.inputs.text}}
"""


def test_runner_rejects_home_that_is_a_file(
    p2e_home, tmp_path, monkeypatch, capsys, write_pipeline
):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv(settings.HOME_ENV, str(home))

    code = runner.main([str(write_pipeline(ECHO_PIPELINE)), "--quiet"])

    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    assert f"Cannot create the run folder under {home / 'runs'}" in err
    assert "PLANT2EDGE_HOME" in err
    assert home.read_text() == "not a folder"


def test_tracking_creates_store_once_concurrently(p2e_home):
    # Each process opens the not yet existing SQLite store at the same moment,
    # as two `plant2edge run` started together on a new home do.
    script = (
        "import sys, time\n"
        "from plant2edge.local.tracking import Tracking\n"
        "while time.time() < float(sys.argv[1]):\n"
        "    time.sleep(0.001)\n"
        "Tracking().ensure_experiment('race')\n"
    )
    start_at = str(time.time() + 4)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [
        (process.wait(timeout=120), process.stderr.read()) for process in processes
    ]
    for process in processes:
        process.stdout.close()
        process.stderr.close()

    for code, err in results:
        assert code == 0, err
    client = MlflowClient(f"sqlite:///{p2e_home / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()].count("race") == 1


def test_tracking_reports_unopenable_store(p2e_home, monkeypatch):
    blocker = p2e_home / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{blocker}/mlflow.db")

    with pytest.raises(PipelineError, match="Cannot open the MLflow store") as info:
        Tracking()

    assert "Not a directory" in str(info.value)
    assert "MLFLOW_TRACKING_URI" in str(info.value)


class _InterruptedResponse:
    """A 200 response whose body stops with Ctrl-C after the first chunk."""

    status_code = 200
    reason = "OK"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def iter_content(self, chunk_size):
        yield b"PAR1"
        raise KeyboardInterrupt


def test_runner_cancels_interrupted_download(p2e_home, monkeypatch, write_pipeline):
    monkeypatch.setattr(
        "plant2edge.local.inputs.requests.get",
        lambda *args, **kwargs: _InterruptedResponse(),
    )
    pipeline = write_pipeline(
        ECHO_PIPELINE.replace(
            "  text: hello\n",
            "  text: hello\n  data:\n    type: uri_file\n"
            "    path: http://127.0.0.1:9/data.parquet\n",
        ).replace(
            "      text: ${{parent.inputs.text}}\n",
            "      text: ${{parent.inputs.text}}\n      file: ${{parent.inputs.data}}\n",
        )
    )

    with pytest.raises(KeyboardInterrupt):
        runner.run_pipeline(pipeline, stream_logs=False)

    (run_dir,) = (p2e_home / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "Canceled"
    assert record["error"] == "Interrupted by the user."
    assert record["steps"]["echo"]["status"] == "Canceled"
    assert list(run_dir.rglob("*.part")) == []


SAS_URL = "http://127.0.0.1:9/c/b.parquet?sv=2022-11-02&sp=r&sig=SECRET"


def test_runner_rejects_unquoted_ampersand(p2e_home, write_pipeline):
    pipeline = write_pipeline(ECHO_PIPELINE)

    with pytest.raises(runner.PipelineSpecError, match="inputs.text") as info:
        runner.run_pipeline(pipeline, {"inputs.text": SAS_URL}, stream_logs=False)

    message = str(info.value)
    assert "Step 'echo'" in message
    assert "'&'" in message
    assert "'${{inputs.text}}'" in message
    assert "sig=SECRET" not in message
    assert not (p2e_home / "runs").exists()


@pytest.mark.parametrize(
    ("text", "character"),
    [("a;b", ";"), ("$(id)", "$"), ("x|y", "|"), ("#note", "#"), ("(v2)", "(")],
)
def test_command_rejects_unquoted_shell_characters(text, character):
    command = "python x.py --text ${{inputs.text}}"

    with pytest.raises(CommandRenderError, match=re.escape(repr(character))):
        check_shell_text(command, {"text": text})


def test_command_accepts_single_quoted_shell_text():
    command = "python x.py $[[--text '${{inputs.text}}']] --n ${{inputs.n}}"

    check_shell_text(command, {"text": SAS_URL + " (v2); $HOME", "n": 3})

    with pytest.raises(CommandRenderError, match="single quote"):
        check_shell_text(command, {"text": "it's", "n": 3})


def test_runner_passes_quoted_sas_url_unchanged(p2e_home, write_pipeline):
    pipeline = write_pipeline(
        ECHO_PIPELINE.replace(
            "      text: ${{parent.inputs.text}}\n",
            f"      text: ${{{{parent.inputs.text}}}}\n      quoted_text: {SAS_URL}\n",
        )
    )

    result = runner.run_pipeline(pipeline, stream_logs=False)

    assert result.status == "Completed"
    argv = json.loads((result.steps["echo"].outputs["out"] / "argv.json").read_text())
    assert argv[argv.index("--quoted-text") + 1] == SAS_URL
    command_sh = (result.run_dir / "echo" / "command.sh").read_text()
    assert "sig=SECRET" not in command_sh
    assert "sig=SECRET" not in (result.run_dir / "run.json").read_text()


def test_runner_names_missing_component_file(p2e_home, write_pipeline):
    pipeline = write_pipeline(
        ECHO_PIPELINE.replace("/echo/component.yaml", "/ecoh/component.yaml")
    )

    with pytest.raises(runner.PipelineSpecError, match="Step 'echo'") as info:
        runner.run_pipeline(pipeline, stream_logs=False)

    message = str(info.value)
    assert "ecoh/component.yaml not found" in message
    assert "relative to the pipeline file" in message
    assert "azureml:" not in message


FILE_PIPELINE = ECHO_PIPELINE.replace(
    "  text: hello\n", "  text: hello\n  data:\n    type: uri_file\n    path: x\n"
).replace(
    "      text: ${{parent.inputs.text}}\n",
    "      text: ${{parent.inputs.text}}\n      file: ${{parent.inputs.data}}\n",
)


def test_runner_rejects_folder_for_file_input(p2e_home, tmp_path, write_pipeline):
    pipeline = write_pipeline(FILE_PIPELINE)

    with pytest.raises(runner.InputResolutionError, match="needs a file") as info:
        runner.run_pipeline(pipeline, {"inputs.data": str(tmp_path)}, stream_logs=False)

    assert f"{tmp_path} is a folder" in str(info.value)
    assert "uri_folder" in str(info.value)


def test_runner_rejects_empty_path(p2e_home, write_pipeline):
    pipeline = write_pipeline(FILE_PIPELINE)

    with pytest.raises(runner.InputResolutionError, match="path is empty"):
        runner.run_pipeline(pipeline, {"inputs.data": ""}, stream_logs=False)


def test_download_reports_cut_connection(tmp_path, http_server):
    files, base_url = http_server
    files["b.parquet"] = b"PAR1" + bytes(10_000)

    with pytest.raises(runner.InputResolutionError, match="whole file") as info:
        download(f"{base_url}/short/b.parquet?{SAS_URL.split('?')[1]}", tmp_path / "b")

    assert "sig=SECRET" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_download_reports_timeout(tmp_path, http_server, monkeypatch):
    _, base_url = http_server
    monkeypatch.setattr("plant2edge.local.inputs.DOWNLOAD_TIMEOUT_S", (5, 0.5))

    with pytest.raises(runner.InputResolutionError, match="timed out") as info:
        download(f"{base_url}/hang/b.parquet", tmp_path / "b")

    assert "0.5 s" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", "is 0, below its minimum 2. Use a value of at least 2."),
        ("abc", "must be an integer, got 'abc'. Write a whole number"),
        ("3.5", "must be an integer, got '3.5'. Write a whole number"),
    ],
)
def test_literal_errors_say_the_fix(value, expected):
    declared = InputSpec("window_size", "integer", default=300, min=2)

    with pytest.raises(runner.PipelineSpecError, match=re.escape(expected)):
        check_literal("Step 'train' input 'window_size'", declared, value)


def test_runner_cancels_run_on_hangup(p2e_home, tmp_path, write_pipeline):
    pid_file = tmp_path / "step.pid"
    pipeline = write_pipeline(
        "jobs:\n"
        "  sleep:\n"
        "    type: command\n"
        "    component: {components}/sleep/component.yaml\n"
        "    inputs:\n"
        f"      pid_file: {pid_file}\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "plant2edge.runner", str(pipeline), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    step_pid = int(pid_file.read_text())

    process.send_signal(signal.SIGHUP)
    code = process.wait(timeout=60)
    err = process.stderr.read()
    process.stderr.close()

    assert code == 130, err
    (run_dir,) = (p2e_home / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "Canceled"
    assert record["steps"]["sleep"]["status"] == "Canceled"
    with pytest.raises(ProcessLookupError):
        os.kill(step_pid, 0)


def test_runner_rejects_duplicate_yaml_key(p2e_home, write_pipeline):
    pipeline = write_pipeline(
        ECHO_PIPELINE.replace("  text: hello\n", "  text: hello\n  text: bye\n")
    )

    with pytest.raises(runner.PipelineSpecError, match="'text'") as info:
        runner.run_pipeline(pipeline, stream_logs=False)

    assert "twice" in str(info.value)
    assert "line 7" in str(info.value)


def test_store_reports_corrupt_asset_json(tmp_path):
    version = tmp_path / "state-identifier-data" / "1"
    version.mkdir(parents=True)
    (version / "asset.json").write_text('{"name": "state-identifier-data", "vers')
    store = LocalDataStore(tmp_path)

    with pytest.raises(DataAssetError, match="not valid JSON") as info:
        store.resolve("state-identifier-data", "latest")

    assert str(version / "asset.json") in str(info.value)
