"""Locations of the local stand-ins for the Azure ML workspace.

Everything lives under one project-local folder, ``.plant2edge`` in the current
directory, unless ``PLANT2EDGE_HOME`` names another one. Each location can be
overridden on its own by the environment variable named beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "PLANT2EDGE_HOME"
DATA_ASSETS_ENV = "PLANT2EDGE_DATA_ASSETS"
DATASETS_ENV = "PLANT2EDGE_DATASETS"


def home() -> Path:
    """Return the folder that contains the local registry, data assets and runs."""
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".plant2edge").resolve()


def tracking_uri() -> str:
    """Return the MLflow tracking URI: ``MLFLOW_TRACKING_URI`` or a local SQLite store.

    An Azure ML workspace's MLflow tracking URI works here the same way.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home() / 'mlflow.db'}"


def registry_uri() -> str:
    """Return the MLflow model registry URI, which defaults to the tracking URI."""
    return os.environ.get("MLFLOW_REGISTRY_URI") or tracking_uri()


def artifacts_root() -> Path:
    """Return the folder for MLflow artifacts of the local store."""
    return home() / "mlartifacts"


def data_assets_dir() -> Path:
    """Return the root of the local versioned data asset store."""
    return Path(os.environ.get(DATA_ASSETS_ENV) or home() / "data-assets").resolve()


def runs_dir() -> Path:
    """Return the folder where the local runner keeps one folder per pipeline run."""
    return home() / "runs"


def cache_dir() -> Path:
    """Return the folder for downloads and wheels kept between runs."""
    return home() / "cache"


def repo_root() -> Path:
    """Return the root of this repository (the folder holding ``components/``)."""
    return Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    """Return the folder with the sample datasets: ``shared/datasets`` beside the repository
    unless ``PLANT2EDGE_DATASETS`` names another one."""
    default = repo_root().parent / "shared" / "datasets"
    return Path(os.environ.get(DATASETS_ENV) or default).resolve()
