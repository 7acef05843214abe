"""Fixtures for the packaging components: a trained model, registries, wheels, packages.

The model is trained with the training component's own functions and saved
with its ``state_identifier.py`` under ``code/``, exactly as the training
pipeline leaves it. Packages are built and validated once per session in a
registry of their own (``packaged``); tests that need a clean registry use
``registry`` instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from plant2edge import settings

REPO_ROOT = settings.repo_root()
COMPONENTS_DIR = REPO_ROOT / "components"
TRAIN_DIR = COMPONENTS_DIR / "train_state_identifier"
MODEL_NAME = "state-identifier"
ASSET_NAME = "state-identifier-data"

# The components import their sibling modules by plain name, as they do when
# Azure ML runs them from their folder. The model pickles its classes as
# ``state_identifier.<class>``, so that module is importable by name too.
for folder in ("package_model", "validate_package", "register_package"):
    if str(COMPONENTS_DIR / folder) not in sys.path:
        sys.path.insert(0, str(COMPONENTS_DIR / folder))
if str(TRAIN_DIR) not in sys.path:
    sys.path.insert(0, str(TRAIN_DIR))


def load_module(path: Path, name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def trainer():
    return load_module(
        TRAIN_DIR / "train_state_identifier.py", "p2e_packaging_train_state_identifier"
    )


@pytest.fixture(scope="session")
def sample_frame(sample_parquet) -> pd.DataFrame:
    return pd.read_parquet(sample_parquet)


def write_asset_folder(frame: pd.DataFrame, folder: Path, version: str = "1") -> Path:
    """Write a state identifier data asset payload folder (data.parquet, manifest)."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "data.parquet", index=False)
    manifest = {
        "name": ASSET_NAME,
        "version": version,
        "row_count": len(frame),
        "columns": list(frame.columns),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def asset_folder(sample_frame, tmp_path_factory) -> Path:
    """Data asset folder holding the unlabeled sample data."""
    return write_asset_folder(sample_frame, tmp_path_factory.mktemp("asset") / "data")


@pytest.fixture(scope="session")
def model_dir(trainer, sample_frame, tmp_path_factory) -> Path:
    """MLflow model folder trained on the sample data as the training step saves it."""
    pipeline = trainer.train_state_identifier(sample_frame)
    manifest = {"name": ASSET_NAME, "version": "1"}
    metadata = trainer.model_metadata(pipeline, sample_frame, manifest, random_seed=0)
    output = tmp_path_factory.mktemp("model") / "model"
    trainer.save_state_identifier(pipeline, output, metadata)
    return output


@pytest.fixture(scope="session")
def wheel_dir() -> Path:
    """The wheel cache of this checkout, filled from the package index on first use."""
    fetch = load_module(REPO_ROOT / "scripts" / "fetch-wheels.py", "p2e_fetch_wheels")
    dest = fetch.default_wheel_dir()
    try:
        return fetch.fetch_wheels(dest)
    except RuntimeError as exc:
        pytest.skip(f"Edge wheels are not cached and cannot be downloaded: {exc}")


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """SQLite file with MLflow's tables, created once because that takes seconds."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


class Registry:
    """A local MLflow store in ``home``, with helpers to register models."""

    def __init__(self, home: Path, template_db: Path):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template_db, home / "mlflow.db")
        self.uri = f"sqlite:///{home / 'mlflow.db'}"
        client = mlflow.MlflowClient(self.uri)
        self.experiment_id = client.create_experiment(
            "packaging-tests", artifact_location=(home / "mlartifacts").as_uri()
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.uri,
            "MLFLOW_EXPERIMENT_ID": self.experiment_id,
            settings.HOME_ENV: str(self.home),
        }

    def client(self) -> mlflow.MlflowClient:
        return mlflow.MlflowClient(self.uri)

    def register_model(self, model_dir: Path, name: str = MODEL_NAME) -> str:
        """Log ``model_dir`` in a run and register it, as the training pipeline does."""
        client = self.client()
        run = client.create_run(self.experiment_id)
        client.log_artifacts(run.info.run_id, str(model_dir), "model")
        if not client.search_registered_models(f"name = '{name}'"):
            client.create_registered_model(name)
        version = client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={"data_asset": f"{ASSET_NAME}:1"},
        )
        client.set_terminated(run.info.run_id)
        return str(version.version)


@pytest.fixture
def registry(p2e_home, monkeypatch, empty_mlflow_db) -> Registry:
    """A fresh local registry that the components find through the environment."""
    store = Registry(p2e_home, empty_mlflow_db)
    for key, value in store.env.items():
        monkeypatch.setenv(key, value)
    return store


@pytest.fixture
def offline_wheels(monkeypatch, wheel_dir) -> Path:
    """Make the components read wheels from the cache only (no package index)."""
    monkeypatch.setenv("PLANT2EDGE_WHEELS", str(wheel_dir))
    return wheel_dir


class Packaged:
    """Session-wide registry with model versions 1 and 2 and their packages."""

    def __init__(self, registry: Registry, wheel_dir: Path, asset_folder: Path):
        self.registry = registry
        self.wheel_dir = wheel_dir
        self.asset_folder = asset_folder
        self.outputs = registry.home / "outputs"

    @property
    def env(self) -> dict[str, str]:
        return {**self.registry.env, "PLANT2EDGE_WHEELS": str(self.wheel_dir)}

    def activate(self):
        return _environment(self.env)

    def isolated(self, name: str):
        """Activate, with TMPDIR and HOME in fresh folders to see what is left there."""
        tmp, home = self.outputs / f"{name}-tmp", self.outputs / f"{name}-home"
        tmp.mkdir(parents=True)
        home.mkdir(parents=True)
        return _environment({**self.env, "TMPDIR": str(tmp), "HOME": str(home)})


class _environment:
    """Set environment variables for a block and restore them afterwards."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self):
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value
        self.saved_tempdir = tempfile.tempdir
        tempfile.tempdir = self.values.get("TMPDIR", tempfile.tempdir)
        return self

    def __exit__(self, *exc_info):
        tempfile.tempdir = self.saved_tempdir
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def packaged(tmp_path_factory, empty_mlflow_db, model_dir, wheel_dir, asset_folder):
    """Model versions 1 and 2 registered in a session registry, nothing packaged yet."""
    registry = Registry(tmp_path_factory.mktemp("packaged-home"), empty_mlflow_db)
    registry.register_model(model_dir)
    registry.register_model(model_dir)
    return Packaged(registry, wheel_dir, asset_folder)


@pytest.fixture(scope="session")
def package_v1(packaged) -> Path:
    """The package_model output for model version 1 (first package: no delta)."""
    builder = load_module(
        COMPONENTS_DIR / "package_model" / "package_model.py", "package_model"
    )
    out = packaged.outputs / "package-1"
    with packaged.isolated("package-1"):
        builder.build_package(
            MODEL_NAME, "1", out, packaged.asset_folder, packaged.wheel_dir
        )
    return out


@pytest.fixture(scope="session")
def validation_v1(packaged, package_v1) -> Path:
    validator = load_module(
        COMPONENTS_DIR / "validate_package" / "validate_package.py", "validate_package"
    )
    out = packaged.outputs / "validation-1"
    with packaged.isolated("validation-1"):
        validator.validate(
            package_v1,
            MODEL_NAME,
            "1",
            packaged.asset_folder,
            out,
            wheel_dir=packaged.wheel_dir,
        )
    return out


@pytest.fixture(scope="session")
def registered_v1(packaged, package_v1, validation_v1) -> dict:
    registrar = load_module(
        COMPONENTS_DIR / "register_package" / "register_package.py", "register_package"
    )
    with packaged.activate():
        return registrar.register(package_v1, validation_v1, MODEL_NAME)


@pytest.fixture(scope="session")
def package_v2(packaged, registered_v1) -> Path:
    """The package for model version 2, built after version 1 was registered (delta)."""
    builder = load_module(
        COMPONENTS_DIR / "package_model" / "package_model.py", "package_model"
    )
    out = packaged.outputs / "package-2"
    with packaged.activate():
        builder.build_package(MODEL_NAME, "latest", out, None, packaged.wheel_dir)
    return out
