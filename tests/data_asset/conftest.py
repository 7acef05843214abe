"""Fixtures for the data asset components: their scripts as modules, and test data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from component_scripts import load_component_script

from plant2edge import settings

COMPONENTS_DIR = settings.repo_root() / "components"


def load_script(stage: str):
    """Import components/<stage>/<stage>.py under a name unique to this folder."""
    return load_component_script(stage, "p2e_component")


@pytest.fixture(scope="session")
def ingest_data():
    return load_script("ingest_data")


@pytest.fixture(scope="session")
def validate_data():
    return load_script("validate_data")


@pytest.fixture(scope="session")
def profile_data():
    return load_script("profile_data")


@pytest.fixture(scope="session")
def profile_figures(profile_data):
    return importlib.import_module("profile_figures")


@pytest.fixture(scope="session")
def register_data():
    return load_script("register_data")


@pytest.fixture(scope="session")
def data_asset_stores(register_data):
    return importlib.import_module("data_asset_stores")


@pytest.fixture(scope="session")
def sample_frame(sample_parquet) -> pd.DataFrame:
    return pd.read_parquet(sample_parquet)


@pytest.fixture
def write_data_folder():
    """Return a function that writes a frame as ``<folder>/data.parquet``."""

    def write(df: pd.DataFrame, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        df.to_parquet(folder / "data.parquet", index=False)
        return folder

    return write
