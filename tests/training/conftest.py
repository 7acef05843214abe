"""Fixtures for the training components: their scripts, a data asset folder, a model."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from component_scripts import load_component_script

from plant2edge import settings

COMPONENTS_DIR = settings.repo_root() / "components"
TRAIN_DIR = COMPONENTS_DIR / "train_state_identifier"
ASSET_NAME = "state-identifier-data"

# The trained model pickles its classes as ``state_identifier.<class>``, the
# module name they have in the component folder, so tests import it the same way.
if str(TRAIN_DIR) not in sys.path:
    sys.path.insert(0, str(TRAIN_DIR))


def load_script(stage: str):
    """Import components/<stage>/<stage>.py under a name unique to this folder."""
    return load_component_script(stage, "p2e_training")


@pytest.fixture(scope="session")
def trainer():
    return load_script("train_state_identifier")


@pytest.fixture(scope="session")
def evaluator():
    return load_script("evaluate_model")


@pytest.fixture(scope="session")
def registrar():
    return load_script("register_model")


@pytest.fixture(scope="session")
def labeled_frame(labeled_parquet) -> pd.DataFrame:
    return pd.read_parquet(labeled_parquet)


def write_data_asset_folder(
    frame: pd.DataFrame, folder: Path, version: str = "1"
) -> Path:
    """Write ``data.parquet`` and ``manifest.json`` as the data asset pipeline does."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "data.parquet", index=False)
    digest = hashlib.sha256((folder / "data.parquet").read_bytes()).hexdigest()
    manifest = {
        "name": ASSET_NAME,
        "version": version,
        "content_sha256": digest,
        "row_count": len(frame),
        "time_start": frame["DateTime"].min().isoformat(),
        "time_end": frame["DateTime"].max().isoformat(),
        "columns": list(frame.columns),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def asset_folder_writer():
    """Return ``write_data_asset_folder`` for tests that build their own folder."""
    return write_data_asset_folder


@pytest.fixture(scope="session")
def labeled_asset_folder(labeled_frame, tmp_path_factory) -> Path:
    """Data asset folder with the labeled sample data, version 1."""
    return write_data_asset_folder(
        labeled_frame, tmp_path_factory.mktemp("asset") / "data"
    )


@pytest.fixture(scope="session")
def default_model_dir(trainer, labeled_frame, labeled_asset_folder, tmp_path_factory):
    """MLflow model folder trained with the default inputs on the labeled data."""
    data, manifest = trainer.read_training_data(labeled_asset_folder)
    pipeline = trainer.train_state_identifier(data)
    metadata = trainer.model_metadata(pipeline, data, manifest, random_seed=0)
    output = tmp_path_factory.mktemp("model") / "model"
    trainer.save_state_identifier(pipeline, output, metadata)
    return output


@pytest.fixture
def allow_pickle(monkeypatch):
    """Allow pickled models to load; MLflow 3.17 rejects them by default, 3.15 does not."""
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """SQLite file with MLflow's tables, created once because that takes seconds."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_store(p2e_home, monkeypatch, allow_pickle, empty_mlflow_db) -> str:
    """Point MLflow at a fresh SQLite store under ``p2e_home``; return an experiment ID.

    The experiment keeps its artifacts under ``p2e_home`` too, and
    ``mlflow.start_run()`` without arguments opens runs in it, as in a step.
    """
    database = p2e_home / "mlflow.db"
    shutil.copyfile(empty_mlflow_db, database)
    uri = f"sqlite:///{database}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(uri)
    experiment_id = client.create_experiment(
        "training-tests", artifact_location=(p2e_home / "mlartifacts").as_uri()
    )
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
    return experiment_id
