"""Sample input rows from a data asset, and an in-process smoke test of the entrypoint."""

from __future__ import annotations

import importlib.util
import logging
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from model_source import ModelSource

logger = logging.getLogger(__name__)

SAMPLE_WINDOWS = 3
PYTHON_TYPES = {"Double": float, "Integer": int, "String": str, "Boolean": bool}


def find_table(data_dir: Path) -> Path:
    """Return the table file of a data asset folder (``data.parquet`` or one table)."""
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


def read_table(data_dir: Path) -> pd.DataFrame:
    path = find_table(data_dir)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_parquet(path)


def sample_payload(
    data_dir: Path, source: ModelSource, signals: list[str]
) -> list[dict]:
    """Return the last rows of the data as AI Inference Server input dicts."""
    frame = read_table(data_dir)
    n_rows = source.window_size + (SAMPLE_WINDOWS - 1) * source.step
    return payload_rows(frame.tail(n_rows), source)


def payload_rows(frame: pd.DataFrame, source: ModelSource) -> list[dict]:
    """Convert rows to input dicts holding the signature inputs as Python values."""
    names = [variable.name for variable in source.inputs]
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ValueError(
            f"The data lacks the model inputs {missing}; it has columns "
            f"{list(frame.columns)}. Use a data asset with columns {names}."
        )
    columns = []
    for variable in source.inputs:
        cast = PYTHON_TYPES[variable.type]
        columns.append([cast(value) for value in frame[variable.name].tolist()])
    return [dict(zip(names, values)) for values in zip(*columns)]


def load_entrypoint(component_dir: Path):
    """Import the staged ``entrypoint.py`` as a fresh module (its own buffers)."""
    name = f"edge_entrypoint_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, component_dir / "entrypoint.py")
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
        sys.path[:] = saved_path
    return module


def check_entrypoint(
    component_dir: Path, payload: list[dict], pipeline, source
) -> None:
    """Stream ``payload`` through the staged entrypoint; compare with ``pipeline.predict``.

    Raises ValueError naming the first window whose state differs.
    """
    module = load_entrypoint(component_dir)
    outputs = [out for out in map(module.process_input, payload) if out is not None]
    got = [out[source.output.name] for out in outputs]
    frame = pd.DataFrame(payload)
    expected = np.asarray(pipeline.predict(frame)).tolist()
    if got != expected:
        index = next(
            (i for i, (a, b) in enumerate(zip(expected, got)) if a != b),
            min(len(got), len(expected)),
        )
        raise ValueError(
            f"The staged entrypoint disagrees with the model on the sample rows: window "
            f"{index} expected {expected[index : index + 1]}, got {got[index : index + 1]} "
            f"({len(expected)} windows expected, {len(got)} emitted). Restore "
            "edge/entrypoint.py of the package_model component from the repository, "
            "or make it compute the model's window features and states."
        )
    logger.info("Entrypoint smoke test: %d windows agree with the model", len(got))
