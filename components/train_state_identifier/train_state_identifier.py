"""Train the state identifier on a data asset folder and save it as an MLflow model.

The model is one scikit-learn Pipeline: ``WindowFeatures`` (windows over the
signal columns and nine statistics per signal, see ``state_identifier.py``),
``StandardScaler`` and ``StateKMeans`` (KMeans returning int64 states). States
are numbered by rising mean signal level, so that state 0 is always the
quietest one whatever the random seed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
import sklearn
import state_identifier
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from state_identifier import (
    DEFAULT_SIGNAL_COLUMNS,
    MIN_WINDOW_SIZE,
    StateKMeans,
    WindowFeatures,
    count_windows,
    feature_names,
    rows_needed,
)

logger = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
UNKNOWN = "unknown"
KMEANS_N_INIT = 10
MODULE_FILE = Path(state_identifier.__file__).resolve()


class TrainingError(Exception):
    """An input that training cannot use; the message names the value and the fix."""


def parse_signal_columns(text: str) -> list[str]:
    columns = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not column for column in columns):
        raise TrainingError(
            f"signal_columns {text!r} is not a comma-separated list of column names; "
            f"pass for example {','.join(DEFAULT_SIGNAL_COLUMNS)!r}."
        )
    duplicates = sorted({column for column in columns if columns.count(column) > 1})
    if duplicates:
        raise TrainingError(
            f"signal_columns {text!r} names {duplicates} more than once; name each "
            "signal once."
        )
    return columns


def read_training_data(path: Path) -> tuple[pd.DataFrame, dict]:
    """Read ``data.parquet`` and the lineage in ``manifest.json`` from a data asset folder.

    A parquet file passed directly is read too, without lineage. Returns the rows
    and the manifest (empty when the folder has none).
    """
    if path.is_file():
        return _read_parquet(path), {}
    if not path.is_dir():
        raise TrainingError(
            f"Training data {path} does not exist. Pass the folder of the data asset "
            f"(it contains {DATA_FILE} and {MANIFEST_FILE})."
        )
    data_file = path / DATA_FILE
    if not data_file.is_file():
        found = sorted(child.name for child in path.iterdir())
        raise TrainingError(
            f"{DATA_FILE} not found in the data folder {path} (it contains {found}). "
            "Pass a data asset written by the data asset pipeline, whose folder contains "
            f"{DATA_FILE} and {MANIFEST_FILE}."
        )
    manifest = {}
    manifest_file = path / MANIFEST_FILE
    if manifest_file.is_file():
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TrainingError(
                f"{manifest_file} is not valid JSON ({exc}). Register the data asset "
                "again with the data asset pipeline."
            ) from exc
    else:
        logger.warning(
            "No %s in %s: the model will not record which data asset it was "
            "trained on.",
            MANIFEST_FILE,
            path,
        )
    return _read_parquet(data_file), manifest


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"Cannot read {path} as parquet: {exc}. Pass a parquet file written by "
            "the data asset pipeline."
        ) from exc


def validate_training_inputs(
    data: pd.DataFrame,
    window_size: int,
    step: int,
    n_states: int,
    signal_columns: Sequence[str],
) -> None:
    """Raise a TrainingError naming the value and the fix for inputs that cannot train."""
    if window_size < MIN_WINDOW_SIZE:
        raise TrainingError(
            f"window_size must be at least {MIN_WINDOW_SIZE} rows, got {window_size}. "
            "A window needs two rows for a standard deviation; the default is 300."
        )
    if step < 1:
        raise TrainingError(
            f"step must be at least 1 row, got {step}. Use step = window_size for "
            "windows side by side, or a smaller step for overlapping windows."
        )
    if n_states < 2:
        raise TrainingError(
            f"n_states must be at least 2, got {n_states}: a single state "
            "distinguishes nothing. The default is 3."
        )
    missing = [column for column in signal_columns if column not in data.columns]
    if missing:
        raise TrainingError(
            f"Signal columns {missing} not found in the training data, which has "
            f"columns {list(data.columns)}. Set signal_columns to names among them."
        )
    non_numeric = [
        column
        for column in signal_columns
        if not pd.api.types.is_numeric_dtype(data[column])
    ]
    if non_numeric:
        raise TrainingError(
            f"Signal columns {non_numeric} are not numeric (dtypes "
            f"{[str(data[column].dtype) for column in non_numeric]}). Convert them "
            "to numbers in the data asset."
        )
    n_windows = count_windows(len(data), window_size, step)
    if n_windows < n_states:
        needed = rows_needed(n_states, window_size, step)
        raise TrainingError(
            f"The training data has {len(data)} rows, which contain {n_windows} complete "
            f"windows of {window_size} rows with step {step}; {n_states} states need "
            f"at least {n_states} windows, that is at least {needed} rows. Use more "
            "data, a smaller window_size or step, or fewer n_states."
        )


def build_state_identifier(
    window_size: int,
    step: int,
    n_states: int,
    signal_columns: Sequence[str],
    random_seed: int,
) -> Pipeline:
    return Pipeline(
        [
            (
                "windows",
                WindowFeatures(
                    window_size=window_size,
                    step=step,
                    signal_columns=tuple(signal_columns),
                ),
            ),
            ("scaler", StandardScaler()),
            (
                "cluster",
                StateKMeans(
                    n_clusters=n_states,
                    n_init=KMEANS_N_INIT,
                    random_state=random_seed,
                ),
            ),
        ]
    )


def train_state_identifier(
    data: pd.DataFrame,
    window_size: int = 300,
    step: int = 300,
    n_states: int = 3,
    signal_columns: Sequence[str] = DEFAULT_SIGNAL_COLUMNS,
    random_seed: int = 0,
) -> Pipeline:
    """Fit the windows -> scaler -> KMeans pipeline on rows in time order."""
    validate_training_inputs(data, window_size, step, n_states, signal_columns)
    pipeline = build_state_identifier(
        window_size, step, n_states, signal_columns, random_seed
    )
    try:
        features = pipeline[:-1].fit_transform(data)
    except ValueError as exc:
        raise TrainingError(f"Cannot compute window features: {exc}") from exc
    distinct = len(np.unique(features, axis=0))
    if distinct < n_states:
        raise TrainingError(
            f"The training data has only {distinct} distinct windows, fewer than "
            f"n_states={n_states}, so KMeans cannot find {n_states} states. Use data "
            "that covers every machine state, or fewer n_states."
        )
    pipeline[-1].fit(features)
    order_states_by_level(pipeline, len(signal_columns))
    return pipeline


def order_states_by_level(pipeline: Pipeline, n_signals: int) -> None:
    """Renumber the clusters in place by the mean signal level of their centres.

    The first ``n_signals`` window features are the per-signal means.
    """
    scaler = pipeline.named_steps["scaler"]
    kmeans = pipeline.named_steps["cluster"]
    centers = scaler.inverse_transform(kmeans.cluster_centers_)
    order = np.argsort(centers[:, :n_signals].mean(axis=1), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    kmeans.cluster_centers_ = kmeans.cluster_centers_[order]
    kmeans.labels_ = rank[kmeans.labels_].astype(kmeans.labels_.dtype)


def model_signature(signal_columns: Sequence[str]) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([ColSpec("double", column) for column in signal_columns]),
        outputs=Schema([ColSpec("long", "state")]),
    )


def model_metadata(
    pipeline: Pipeline, data: pd.DataFrame, manifest: dict, random_seed: int
) -> dict:
    """Build the MLmodel metadata that packaging and the edge runtime read."""
    windows = pipeline.named_steps["windows"]
    metadata = {
        "window_size": int(windows.window_size),
        "step": int(windows.step),
        "feature_columns": list(windows.signal_columns),
        "n_states": int(pipeline.named_steps["cluster"].n_clusters),
        "data_asset_name": str(manifest.get("name") or UNKNOWN),
        "data_asset_version": str(manifest.get("version") or UNKNOWN),
        "window_feature_names": feature_names(windows.signal_columns),
        "state_order": "rising mean signal level",
        "training_rows": len(data),
        "training_windows": windows.count_windows(len(data)),
        "random_seed": int(random_seed),
    }
    if manifest.get("content_sha256"):
        metadata["data_content_sha256"] = str(manifest["content_sha256"])
    return metadata


def save_state_identifier(pipeline: Pipeline, output: Path, metadata: dict) -> None:
    """Save the pipeline as an MLflow sklearn model in ``output``, atomically.

    The model is pickled with the standard library (no cloudpickle), and
    ``state_identifier.py`` is copied to ``code/`` so the pickle can be loaded
    with only numpy, pandas and scikit-learn installed.
    """
    with staged_output(output) as staging:
        mlflow.sklearn.save_model(
            pipeline,
            path=str(staging),
            code_paths=[str(MODULE_FILE)],
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
            signature=model_signature(metadata["feature_columns"]),
            metadata=metadata,
            pip_requirements=[
                f"numpy=={np.__version__}",
                f"pandas=={pd.__version__}",
                f"scikit-learn=={sklearn.__version__}",
            ],
        )


@contextlib.contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """Yield an empty staging folder and move its content into ``output`` on success.

    The staging folder sits beside ``output`` when its parent is writable, so
    the final step is one rename. Otherwise it sits inside ``output`` and its
    entries are renamed one by one. A failure leaves ``output`` as it was.
    """
    output.mkdir(parents=True, exist_ok=True)
    if any(output.iterdir()):
        raise TrainingError(
            f"Output folder {output} is not empty. Pass an empty or new folder."
        )
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent)
        )
    except OSError:
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=output))
    # mkdtemp creates the folder as 0700; the published model is readable by all.
    staging.chmod(0o755)
    try:
        yield staging
        try:
            os.replace(staging, output)
        except OSError:
            for child in staging.iterdir():
                os.replace(child, output / child.name)
            staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def log_training_run(metadata: dict, params: dict) -> None:
    """Log the hyperparameters and lineage to the step's MLflow run."""
    with mlflow.start_run():
        mlflow.log_params(params)
        mlflow.set_tags(
            {
                "data_asset_name": metadata["data_asset_name"],
                "data_asset_version": metadata["data_asset_version"],
            }
        )
        mlflow.log_metrics(
            {
                "training_rows": metadata["training_rows"],
                "training_windows": metadata["training_windows"],
            }
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="data asset folder containing data.parquet",
    )
    parser.add_argument(
        "--window-size",
        type=int,
        default=300,
        help="rows per window (default 300, 75 s at 250 ms)",
    )
    parser.add_argument(
        "--step",
        type=int,
        default=300,
        help="rows between the starts of two windows (default 300)",
    )
    parser.add_argument(
        "--n-states",
        type=int,
        default=3,
        help="number of machine states (clusters), default 3",
    )
    parser.add_argument(
        "--signal-columns",
        nargs="+",
        default=[",".join(DEFAULT_SIGNAL_COLUMNS)],
        help="comma-separated signal columns (default ph1,ph2,ph3)",
    )
    parser.add_argument(
        "--random-seed",
        type=int,
        default=0,
        help="seed of the KMeans initialisation (default 0)",
    )
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="empty output folder for the MLflow model",
    )
    args = parser.parse_args(argv)
    # Azure ML does not quote values, so a column name with spaces arrives split.
    args.signal_columns = " ".join(args.signal_columns)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        signal_columns = parse_signal_columns(args.signal_columns)
        logger.info("Step 1 of 3: reading training data from %s", args.data)
        data, manifest = read_training_data(args.data)
        logger.info(
            "Read %d rows (data asset %s version %s)",
            len(data),
            manifest.get("name", UNKNOWN),
            manifest.get("version", UNKNOWN),
        )
        logger.info(
            "Step 2 of 3: training %d states on windows of %d rows, step %d",
            args.n_states,
            args.window_size,
            args.step,
        )
        pipeline = train_state_identifier(
            data,
            window_size=args.window_size,
            step=args.step,
            n_states=args.n_states,
            signal_columns=signal_columns,
            random_seed=args.random_seed,
        )
        metadata = model_metadata(pipeline, data, manifest, args.random_seed)
        logger.info("Step 3 of 3: saving the MLflow model to %s", args.model)
        save_state_identifier(pipeline, args.model, metadata)
    except TrainingError as exc:
        logger.error("%s", exc)
        return 2
    log_training_run(
        metadata,
        params={
            "window_size": args.window_size,
            "step": args.step,
            "n_states": args.n_states,
            "signal_columns": ",".join(signal_columns),
            "random_seed": args.random_seed,
            "kmeans_n_init": KMEANS_N_INIT,
        },
    )
    logger.info(
        "Trained on %d windows in %.1f s; model saved to %s",
        metadata["training_windows"],
        time.perf_counter() - started,
        args.model,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
