"""Read the package under test, the held-out rows and the model's own predictions."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

PYTHON_CASTS = {"Double": float, "Integer": int, "String": str, "Boolean": bool}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_package(package_dir: Path) -> tuple[dict, Path]:
    """Return package.json and the edge zip, after checking the zip's SHA-256."""
    package_dir = Path(package_dir)
    path = package_dir / "package.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: pass the package output folder of package_model."
        )
    info = json.loads(path.read_text(encoding="utf-8"))
    edge_zip = package_dir / info["edge_package"]
    checksum_file = edge_zip.with_name(edge_zip.name + ".sha256")
    if not edge_zip.is_file() or not checksum_file.is_file():
        raise FileNotFoundError(
            f"Edge package {edge_zip} or its {checksum_file.name} is missing; rebuild "
            "the package with package_model."
        )
    actual = sha256_of(edge_zip)
    recorded = checksum_file.read_text(encoding="utf-8").split()[0]
    if actual != recorded or actual != info["edge_package_sha256"]:
        raise ValueError(
            f"{edge_zip.name} has SHA-256 {actual}, but {checksum_file.name} records "
            f"{recorded} and package.json records {info['edge_package_sha256']}. The "
            "file changed after packaging; rebuild the package."
        )
    return info, edge_zip


def resolve_version(name: str, model_version: str) -> str:
    """Return the registered version number for digits or 'latest'."""
    text = str(model_version).strip()
    if text != "latest" and not re.fullmatch(r"[0-9]+", text):
        raise ValueError(
            f"Invalid model_version {model_version!r}: use a registered version "
            "number such as 3, or 'latest'."
        )
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        raise LookupError(
            f"Registered model {name!r} not found in the registry at "
            f"{mlflow.get_registry_uri()}. Check model_name."
        ) from exc
    versions = sorted(
        int(v.version) for v in client.search_model_versions(f"name = '{name}'")
    )
    if not versions:
        raise LookupError(f"Registered model {name!r} has no versions.")
    if text == "latest":
        return str(versions[-1])
    if int(text) not in versions:
        raise LookupError(
            f"Registered model {name!r} has no version {text}; registered versions "
            f"are {versions}."
        )
    # "01" is version 1, as package_model reads it.
    return str(int(text))


def check_model(info: dict, model_name: str, model_version: str) -> str:
    """Return the model version to compare with; it must be the packaged one."""
    version = resolve_version(model_name, model_version)
    packaged = (info["model_name"], str(info["model_version"]))
    if packaged != (model_name, version):
        raise ValueError(
            f"The package was built from model {packaged[0]!r} version {packaged[1]}, "
            f"but validation was asked for {model_name!r} version {version}. Validate "
            "with the model the package was built from."
        )
    return version


def find_table(data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    if data_dir.is_file():
        return data_dir
    for candidate in (data_dir / "data.parquet", data_dir / "data" / "data.parquet"):
        if candidate.is_file():
            return candidate
    tables = sorted(data_dir.glob("*.parquet")) + sorted(data_dir.glob("*.csv"))
    if len(tables) == 1:
        return tables[0]
    raise FileNotFoundError(
        f"No data.parquet in data asset folder {data_dir} (found "
        f"{[p.name for p in tables]}). Pass the folder of a state identifier data asset."
    )


def held_out_rows(
    data_dir: Path, n_rows: int, input_names: list[str], window_size: int
) -> pd.DataFrame:
    """Return the last ``n_rows`` rows of the data asset, checking the input columns."""
    if n_rows < window_size:
        raise ValueError(
            f"n_rows={n_rows} is fewer than one window ({window_size} rows); pass at "
            f"least {window_size}."
        )
    path = find_table(data_dir)
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = [name for name in input_names if name not in frame.columns]
    if missing:
        raise ValueError(
            f"The validation data {path} lacks the package inputs {missing}; it has "
            f"columns {list(frame.columns)}. Use a data asset with columns {input_names}."
        )
    if len(frame) < n_rows:
        logger.warning(
            "The data contains only %d rows; validating on all of them", len(frame)
        )
    return frame.tail(n_rows).reset_index(drop=True)


def payload(frame: pd.DataFrame, input_types: dict[str, str]) -> list[dict]:
    """Return the rows as AI Inference Server input dicts of plain Python values."""
    names = list(input_types)
    columns = [
        [PYTHON_CASTS[input_types[name]](value) for value in frame[name].tolist()]
        for name in names
    ]
    return [dict(zip(names, values)) for values in zip(*columns)]


def batches(rows: list[dict], size: int) -> list[list[dict]]:
    """Group rows for a batch-input package: one window completes per batch of ``step`` rows."""
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def model_predictions(
    name: str, version: str, frame: pd.DataFrame, input_names: list[str]
) -> list:
    """Return the registered model's states for the rows, as plain Python values."""
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    states = np.asarray(model.predict(frame[input_names]))
    return states.reshape(-1).tolist()
