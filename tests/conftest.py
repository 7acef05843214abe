"""Fixtures shared by every test: an isolated local workspace and the sample data."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from plant2edge import settings

os.environ.setdefault("SIMATICAI_TELEMETRY", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = settings.repo_root()


@pytest.fixture(autouse=True)
def _drop_stream_handlers_added_by_test():
    """Remove root StreamHandlers that a component's main() added in a test.

    logging.basicConfig binds the sys.stderr of the moment, which pytest's
    capsys closes after the test. Later basicConfig calls do nothing while that
    handler stays, so later tests would log into a closed stream.
    """
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in before and type(handler) is logging.StreamHandler:
            root.removeHandler(handler)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def p2e_home(tmp_path, monkeypatch) -> Path:
    """Point the local registry, data assets and runs at a fresh folder."""
    home = tmp_path / "p2e-home"
    home.mkdir()
    monkeypatch.setenv(settings.HOME_ENV, str(home))
    for name in (
        settings.DATA_ASSETS_ENV,
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    path = settings.datasets_dir() / "state-identifier"
    if not (path / "si-sample.parquet").is_file():
        pytest.fail(
            f"Sample data not found in {path}. Set {settings.DATASETS_ENV} to the "
            "folder that holds state-identifier/si-sample.parquet."
        )
    return path


@pytest.fixture(scope="session")
def sample_parquet(datasets_dir) -> Path:
    return datasets_dir / "si-sample.parquet"


@pytest.fixture(scope="session")
def labeled_parquet(datasets_dir) -> Path:
    return datasets_dir / "si-sample-with-labels.parquet"
