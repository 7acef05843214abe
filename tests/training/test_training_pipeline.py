"""End to end: pipelines/training.yaml through the local runner.

The data asset is registered in the local store first, as the data asset
pipeline leaves it, and the pipeline resolves ``state-identifier-data@latest``.
"""

from __future__ import annotations

import json
import shutil

import mlflow
import pytest

from plant2edge import settings
from plant2edge.assets import LocalDataStore
from plant2edge.runner import run_pipeline

ASSET_NAME = "state-identifier-data"
PIPELINE = settings.repo_root() / "pipelines" / "training.yaml"


@pytest.fixture
def registered_asset(
    p2e_home,
    labeled_frame,
    tmp_path,
    empty_mlflow_db,
    allow_pickle,
    asset_folder_writer,
):
    shutil.copyfile(empty_mlflow_db, p2e_home / "mlflow.db")
    folder = asset_folder_writer(labeled_frame, tmp_path / "payload")
    return LocalDataStore(settings.data_assets_dir()).register(
        ASSET_NAME, folder, "uri_folder", description="labeled sample data"
    )


def read_output(result, output: str, file_name: str) -> dict:
    return json.loads((result.outputs[output] / file_name).read_text())


def model_version(name: str, version: str):
    mlflow.set_tracking_uri(settings.tracking_uri())
    try:
        return mlflow.MlflowClient().get_model_version(name, version)
    finally:
        mlflow.set_tracking_uri(None)


@pytest.mark.slow
def test_training_pipeline_registers_only_better_models(registered_asset):
    """The first run registers version 1; a worse 2-state model is then kept out."""
    first = run_pipeline(PIPELINE, stream_logs=False)
    first.raise_for_status()
    second = run_pipeline(
        PIPELINE,
        {"inputs.n_states": "2", "inputs.min_adjusted_rand": "0.0"},
        stream_logs=False,
    )
    second.raise_for_status()

    metrics = read_output(first, "metrics", "metrics.json")["metrics"]
    registration = read_output(first, "registration", "registration.json")
    rejected = read_output(second, "registration", "registration.json")
    version = model_version("state-identifier", "1")
    assert registered_asset == "1"
    assert list(first.steps) == ["train", "evaluate", "register"]
    assert metrics["adjusted_rand_lag_corrected"] >= 0.85
    assert registration["registered"] is True
    assert registration["version"] == "1"
    assert registration["run_id"] == first.steps["register"].mlflow_run_id
    assert version.tags["data_asset_name"] == ASSET_NAME
    assert version.tags["data_asset_version"] == "1"
    assert float(version.tags["adjusted_rand_lag_corrected"]) == pytest.approx(
        metrics["adjusted_rand_lag_corrected"]
    )
    assert (first.outputs["plots"] / "states_over_time.png").is_file()
    assert rejected["registered"] is False
    assert rejected["comparison"]["metric"] == "adjusted_rand_lag_corrected"
    assert rejected["comparison"]["latest_version"] == "1"
    assert rejected["comparison"]["candidate"] < rejected["comparison"]["latest"]
