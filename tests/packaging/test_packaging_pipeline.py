"""End to end: pipelines/packaging.yaml through the local runner.

The model is registered the way the training pipeline leaves it and the data
asset is in the local store, so the pipeline's defaults resolve
``state-identifier`` latest and ``state-identifier-data@latest``.
"""

from __future__ import annotations

import json

import pytest

from plant2edge import settings
from plant2edge.assets import LocalDataStore
from plant2edge.runner import run_pipeline

PIPELINE = settings.repo_root() / "pipelines" / "packaging.yaml"
MODEL_NAME = "state-identifier"


@pytest.mark.slow
def test_packaging_pipeline_registers_validated_edge_package(
    registry, offline_wheels, model_dir, asset_folder
):
    registry.register_model(model_dir)
    LocalDataStore(settings.data_assets_dir()).register(
        "state-identifier-data", asset_folder, "uri_folder"
    )

    result = run_pipeline(PIPELINE, stream_logs=False)
    result.raise_for_status()

    package = json.loads((result.outputs["package"] / "package.json").read_text())
    validation = json.loads(
        (result.outputs["validation"] / "validation.json").read_text()
    )
    registration = json.loads(
        (result.outputs["registration"] / "registration.json").read_text()
    )
    version = registry.client().get_model_version(f"{MODEL_NAME}_edge", "1")
    assert list(result.steps) == ["package", "validate", "register"]
    assert package["package_version"] == "1"
    assert validation["passed"] is True
    assert validation["n_windows"] == 20
    assert registration["version"] == "1"
    assert version.tags["package_id"] == package["package_id"]
    assert version.tags["validation"] == "passed"


@pytest.mark.slow
def test_packaging_pipeline_fails_before_registering_invalid_version(
    registry, offline_wheels, model_dir, asset_folder
):
    registry.register_model(model_dir)
    LocalDataStore(settings.data_assets_dir()).register(
        "state-identifier-data", asset_folder, "uri_folder"
    )

    result = run_pipeline(PIPELINE, {"inputs.model_version": "1.a"}, stream_logs=False)

    assert result.status == "Failed"
    assert result.steps["package"].status == "Failed"
    stderr = (result.steps["package"].log_dir / "stderr.txt").read_text()
    assert "Invalid model_version '1.a'" in stderr
    assert result.steps["register"].status != "Completed"
    assert (
        registry.client().search_registered_models(f"name = '{MODEL_NAME}_edge'") == []
    )
