"""Time the packaging steps: edge package build and first validation run.

Trains the state identifier on ``si-sample.parquet``, registers it in a
throwaway MLflow store and times, in this process:

- cold: filling an empty wheel folder from the package index
  (``scripts/fetch-wheels.py``), building the packages, validating them in the
  AI SDK's local pipeline runner (which builds its virtual environment);
- warm: the same build and validation again with the filled wheel folder.

    .venv/bin/python benchmarks/edge_packaging.py [--warm-only]

``--warm-only`` uses the checkout's wheel cache instead of downloading into
an empty folder. Prints a table of seconds per phase.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd

from plant2edge import settings

REPO = settings.repo_root()
for folder in (
    "package_model",
    "validate_package",
    "train_state_identifier",
):
    sys.path.insert(0, str(REPO / "components" / folder))

import package_model
import train_state_identifier as trainer
import validate_package

MODEL_NAME = "state-identifier"


def load_fetch_wheels():
    path = REPO / "scripts" / "fetch-wheels.py"
    spec = importlib.util.spec_from_file_location("fetch_wheels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def timed(timings: dict, name: str):
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started


def register_model(home: Path, frame: pd.DataFrame, asset: Path) -> None:
    """Train, save and register the model in an MLflow store under ``home``."""
    uri = f"sqlite:///{home / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment(
        "packaging-benchmark", artifact_location=(home / "mlartifacts").as_uri()
    )
    os.environ["MLFLOW_EXPERIMENT_ID"] = experiment
    pipeline = trainer.train_state_identifier(frame)
    manifest = {"name": "state-identifier-data", "version": "1"}
    metadata = trainer.model_metadata(pipeline, frame, manifest, random_seed=0)
    trainer.save_state_identifier(pipeline, home / "model", metadata)
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(home / "model"), "model")
    client.create_registered_model(MODEL_NAME)
    client.create_model_version(
        MODEL_NAME, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    frame.to_parquet(asset / "data.parquet", index=False)


def build_and_validate(home: Path, asset: Path, wheels: Path, label: str, timings):
    package = home / f"package-{label}"
    validation = home / f"validation-{label}"
    with timed(timings, f"{label}: package build"):
        package_model.build_package(MODEL_NAME, "1", package, asset, wheels)
    with timed(timings, f"{label}: first validation run"):
        result = validate_package.validate(
            package, MODEL_NAME, "1", asset, validation, wheel_dir=wheels
        )
    timings[f"{label}: of which the runner"] = result["runner_seconds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--warm-only",
        action="store_true",
        help="skip the download into an empty wheel folder",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("SIMATICAI_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    fetch = load_fetch_wheels()
    frame = pd.read_parquet(
        settings.datasets_dir() / "state-identifier/si-sample.parquet"
    )
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="packaging-bench-") as tmp:
        home = Path(tmp)
        asset = home / "asset"
        asset.mkdir()
        register_model(home, frame, asset)
        if args.warm_only:
            wheels = fetch.fetch_wheels(fetch.default_wheel_dir())
        else:
            wheels = home / "wheels"
            with timed(timings, "cold: fetch wheels from the index"):
                fetch.fetch_wheels(wheels)
            build_and_validate(home, asset, wheels, "cold", timings)
        build_and_validate(home, asset, wheels, "warm", timings)

    print(
        f"Packaging benchmark: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'phase':40} {'seconds':>8}")
    for name, seconds in timings.items():
        print(f"{name:40} {seconds:8.1f}")
    warm = timings["warm: package build"] + timings["warm: first validation run"]
    print(f"{'warm: build + first validation':40} {warm:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
