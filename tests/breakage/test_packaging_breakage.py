"""Breaking the packaging steps: a changed entrypoint, a bad wheel cache, a cancel.

Each step must stop with one log line that names the bad value and the fix,
register nothing and leave no temporary folder behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from plant2edge import settings

COMPONENTS_DIR = settings.repo_root() / "components"
for _stage in (
    "package_model",
    "register_package",
    "train_state_identifier",
    "validate_package",
):
    if str(COMPONENTS_DIR / _stage) not in sys.path:
        sys.path.insert(0, str(COMPONENTS_DIR / _stage))

import edge_pipeline
import edge_requirements
import model_source
import package_model
import train_state_identifier as trainer
import validation_inputs

MODEL_NAME = "state-identifier"
ASSET_NAME = "state-identifier-data"


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory, sample_parquet) -> Path:
    """An MLflow model folder saved as the training step saves it."""
    frame = pd.read_parquet(sample_parquet)
    pipeline = trainer.train_state_identifier(frame)
    manifest = {"name": ASSET_NAME, "version": "1"}
    metadata = trainer.model_metadata(pipeline, frame, manifest, random_seed=0)
    output = tmp_path_factory.mktemp("model") / "model"
    trainer.save_state_identifier(pipeline, output, metadata)
    return output


@pytest.fixture
def data_folder(tmp_path, sample_parquet) -> Path:
    folder = tmp_path / "asset" / "data"
    folder.mkdir(parents=True)
    shutil.copy(sample_parquet, folder / "data.parquet")
    return folder


@pytest.fixture
def registered(p2e_home, monkeypatch, trained_model) -> str:
    """Register the trained model as version 1 in a fresh local registry."""
    uri = f"sqlite:///{p2e_home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment(
        "breakage", artifact_location=(p2e_home / "mlartifacts").as_uri()
    )
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(trained_model), "model")
    client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(
        MODEL_NAME, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    client.set_terminated(run.info.run_id)
    return str(version.version)


@pytest.fixture
def tampered_edge_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the edge entrypoint that reports the next state instead of the state."""
    edge = tmp_path / "edge"
    shutil.copytree(edge_pipeline.EDGE_DIR, edge)
    entrypoint = edge / edge_pipeline.ENTRYPOINT
    text = entrypoint.read_text()
    original = "state = MODEL.predict(features[np.newaxis])[0]"
    assert original in text
    entrypoint.write_text(
        text.replace(
            original, "state = (MODEL.predict(features[np.newaxis])[0] + 1) % 3"
        )
    )
    monkeypatch.setattr(edge_pipeline, "EDGE_DIR", edge)
    return edge


def edge_versions() -> list:
    client = mlflow.MlflowClient()
    return client.search_model_versions(f"name = '{MODEL_NAME}_edge'")


def test_package_tampered_entrypoint_one_error(
    registered, data_folder, tampered_edge_dir, tmp_path, capsys
):
    out = tmp_path / "package"

    code = package_model.main(
        [
            "--model-name",
            MODEL_NAME,
            "--model-version",
            registered,
            "--data",
            str(data_folder),
            "--package",
            str(out),
        ]
    )

    assert code == 1
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if " ERROR " in line]
    assert "Traceback" not in stderr
    assert len(errors) == 1
    assert "disagrees with the model" in errors[0]
    assert "entrypoint.py" in errors[0]
    assert list(out.iterdir()) == []
    assert edge_versions() == []


def write_corrupt_wheels(folder: Path, model: Path) -> list[str]:
    """Write a file that is not a zip under the wheel name of every edge requirement."""
    modules = sorted((model / "code").rglob("*.py"))
    pins = edge_requirements.edge_requirements(modules)
    for name, version in pins.items():
        wheel = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        (folder / wheel).write_bytes(b"not a wheel")
    return sorted(pins)


def test_package_corrupt_wheels_names_folder(
    registered, trained_model, tmp_path, monkeypatch
):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    assert "scikit-learn" in write_corrupt_wheels(wheels, trained_model)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    out = tmp_path / "package"

    with pytest.raises(edge_pipeline.ExportError) as raised:
        package_model.build_package(MODEL_NAME, registered, out, None, wheels)

    message = str(raised.value)
    assert str(wheels) in message
    assert "scripts/fetch-wheels.py" in message
    assert list(out.iterdir()) == []
    assert list(temp.iterdir()) == []
    assert edge_versions() == []


REGISTER_UNTIL_STOPPED = """
import sys
import time

import mlflow

sys.path.insert(0, {folder!r})
import register_package

real_log_artifacts = mlflow.log_artifacts


def log_then_wait(*args, **kwargs):
    real_log_artifacts(*args, **kwargs)
    print("logged", flush=True)
    time.sleep(60)


mlflow.log_artifacts = log_then_wait
sys.exit(register_package.main(sys.argv[1:]))
"""


def write_validated_package(folder: Path) -> tuple[Path, Path]:
    """Write a package_model output and a passed validation for version 1."""
    package, validation = folder / "package", folder / "validation"
    (package / "edge").mkdir(parents=True)
    validation.mkdir()
    zip_path = package / "edge" / "state-identifier-edge_1.zip"
    zip_path.write_bytes(b"PK\x05\x06" + bytes(18))
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    (package / "edge" / f"{zip_path.name}.sha256").write_text(
        f"{digest}  {zip_path.name}\n"
    )
    info = {
        "package_id": "3f2b8e0e-5a55-4a39-9d35-3c53e1d0f7a1",
        "package_version": "1",
        "model_name": MODEL_NAME,
        "model_version": "1",
        "data_asset": f"{ASSET_NAME}:1",
        "validation": None,
        "edge_package": f"edge/{zip_path.name}",
        "edge_package_sha256": digest,
        "delta_package": None,
        "delta_origin_version": None,
        **{k: None for k in ("inputs", "output", "metrics", "parameters")},
        **{k: None for k in ("window_size", "step", "requirements")},
        "python_version": "3.11",
    }
    (package / "package.json").write_text(json.dumps(info))
    result = {
        "passed": True,
        "edge_package": zip_path.name,
        "edge_package_sha256": digest,
        "package_id": info["package_id"],
    }
    (validation / "validation.json").write_text(json.dumps(result))
    return package, validation


def test_register_sigterm_leaves_no_temp(p2e_home, tmp_path, monkeypatch):
    uri = f"sqlite:///{p2e_home / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment(
        "breakage", artifact_location=(p2e_home / "mlartifacts").as_uri()
    )
    package, validation = write_validated_package(tmp_path)
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = tmp_path / "register_until_stopped.py"
    folder = str(COMPONENTS_DIR / "register_package")
    script.write_text(REGISTER_UNTIL_STOPPED.format(folder=folder))
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_EXPERIMENT_ID": experiment,
    }
    argv = [sys.executable, str(script), "--package", str(package)]
    argv += ["--validation", str(validation), "--model-name", MODEL_NAME]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "logged"
        assert [p.name[:17] for p in temp.iterdir()] == ["register-package-"]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode != 0
    assert list(temp.iterdir()) == []
    runs = client.search_runs([experiment])
    assert [run.info.status for run in runs] == ["FAILED"]
    assert client.search_model_versions(f"name = '{MODEL_NAME}_edge'") == []


@pytest.mark.parametrize("text", ["01", "001", " 1 "])
def test_model_version_with_leading_zero_is_number(registered, text):
    client = mlflow.MlflowClient()

    assert model_source.resolve_version(client, MODEL_NAME, text) == "1"
    assert validation_inputs.resolve_version(MODEL_NAME, text) == "1"
