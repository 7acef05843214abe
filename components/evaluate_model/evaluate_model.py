"""Evaluate a state identifier model on a data asset and plot its states.

Unsupervised metrics (silhouette and Davies-Bouldin of the scaled window
features) are always computed. When the data has a label column, each window
also gets a label and the states are compared with it twice:

- plain: the label of a window is the most common label among its own rows;
- lag-corrected: window ``i`` is compared with the label of window
  ``i + label_lag`` (rows ``[(i + lag) * step, (i + lag) * step + window_size)``,
  cut at the end of the data). The labels of the Siemens sample data describe
  the window before the one they are written on, so the default lag is 1.

Rows whose label is missing or -1 carry no label, and windows without any
labeled row are left out of the comparison.
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

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import Model
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import PCA
from sklearn.metrics import (
    adjusted_rand_score,
    davies_bouldin_score,
    silhouette_score,
)
from sklearn.metrics.cluster import contingency_matrix

logger = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
METRICS_FILE = "metrics.json"
STATES_PLOT = "states_over_time.png"
CLUSTERS_PLOT = "clusters_pca.png"
NO_LABEL = -1
TIME_COLUMN = "DateTime"
MAX_PLOTTED_STATES = 10


class EvaluationError(Exception):
    """An input that evaluation cannot use; the message names the value and the fix."""


def load_state_identifier(model_dir: Path):
    """Load the scikit-learn Pipeline and its MLmodel metadata from a model folder."""
    if not (model_dir / "MLmodel").is_file():
        raise EvaluationError(
            f"No MLmodel file in {model_dir}. Pass the model output of the "
            "train_state_identifier step."
        )
    metadata = Model.load(str(model_dir)).metadata or {}
    missing = [
        key for key in ("window_size", "step", "feature_columns") if key not in metadata
    ]
    if missing:
        raise EvaluationError(
            f"The model in {model_dir} has no metadata {missing}. Train it with the "
            "train_state_identifier component, which records them."
        )
    return mlflow.sklearn.load_model(str(model_dir)), metadata


def read_data(path: Path) -> tuple[pd.DataFrame, dict]:
    """Read ``data.parquet`` and ``manifest.json`` from a data asset folder, or a parquet file."""
    if path.is_file():
        return pd.read_parquet(path), {}
    data_file = path / DATA_FILE
    if not data_file.is_file():
        found = sorted(child.name for child in path.iterdir()) if path.is_dir() else []
        raise EvaluationError(
            f"{DATA_FILE} not found in {path} (it contains {found}). Pass the data "
            "asset folder written by the data asset pipeline."
        )
    manifest_file = path / MANIFEST_FILE
    manifest = {}
    if manifest_file.is_file():
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise EvaluationError(
                f"{manifest_file} is not valid JSON ({exc}). Register the data asset "
                "again with the data asset pipeline."
            ) from exc
    return pd.read_parquet(data_file), manifest


def window_starts(n_windows: int, step: int) -> np.ndarray:
    return np.arange(n_windows) * step


def window_labels(
    labels: pd.Series, n_windows: int, window_size: int, step: int, lag: int = 0
) -> np.ndarray:
    """Return the most common label of each window's rows, shifted by ``lag`` windows.

    Windows with no labeled row get None. Ties go to the smallest label.
    """
    values = labels.to_numpy()
    labeled = labels.notna().to_numpy() & (labels != NO_LABEL).to_numpy()
    result = np.empty(n_windows, dtype=object)
    for index in range(n_windows):
        start = (index + lag) * step
        rows = slice(start, start + window_size)
        window_values = values[rows][labeled[rows]]
        if window_values.size == 0:
            result[index] = None
            continue
        uniques, counts = np.unique(window_values, return_counts=True)
        result[index] = _python_scalar(uniques[np.argmax(counts)])
    return result


def matched_accuracy(labels: np.ndarray, states: np.ndarray) -> tuple[float, dict]:
    """Return the accuracy after matching states to labels one to one (Hungarian).

    States left without a label (more states than labels) count as wrong.
    Returns the accuracy and the mapping state -> label.
    """
    label_values, label_index = np.unique(labels.astype(str), return_inverse=True)
    original = {str(value): _python_scalar(value) for value in labels}
    state_values, state_index = np.unique(states, return_inverse=True)
    table = contingency_matrix(label_index, state_index)
    rows, columns = linear_sum_assignment(table, maximize=True)
    accuracy = float(table[rows, columns].sum() / len(labels))
    mapping = {
        int(state_values[column]): original[label_values[row]]
        for row, column in zip(rows, columns)
    }
    return accuracy, mapping


def _python_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def label_metrics(
    labels: pd.Series, states: np.ndarray, window_size: int, step: int, lag: int
) -> tuple[dict, dict]:
    """Compare states with window labels, plain and lag-corrected.

    Returns the numeric metrics and the details (labeled window counts, mappings).
    """
    metrics, details = {}, {}
    for name, shift in (("plain", 0), ("lag_corrected", lag)):
        window_label = window_labels(labels, len(states), window_size, step, shift)
        keep = np.array([label is not None for label in window_label])
        details[f"labeled_windows_{name}"] = int(keep.sum())
        if keep.sum() < 2:
            logger.warning("Fewer than 2 labeled windows (%s); no label metrics", name)
            continue
        kept_labels = np.array(list(window_label[keep]))
        kept_states = states[keep]
        accuracy, mapping = matched_accuracy(kept_labels, kept_states)
        metrics[f"adjusted_rand_{name}"] = float(
            adjusted_rand_score(kept_labels.astype(str), kept_states)
        )
        metrics[f"accuracy_{name}"] = accuracy
        details[f"state_to_label_{name}"] = {
            str(state): mapping[state] for state in sorted(mapping)
        }
    return metrics, details


def cluster_metrics(features: np.ndarray, states: np.ndarray) -> dict:
    """Return silhouette and Davies-Bouldin of the scaled features, when defined."""
    n_found = len(np.unique(states))
    if n_found < 2 or n_found >= len(states):
        logger.warning(
            "Silhouette and Davies-Bouldin need 2 to n_windows - 1 distinct states; "
            "found %d states in %d windows.",
            n_found,
            len(states),
        )
        return {}
    return {
        "silhouette": float(silhouette_score(features, states)),
        "davies_bouldin": float(davies_bouldin_score(features, states)),
    }


def compute_states(pipeline, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the scaled window features and the state of each complete window."""
    try:
        features = pipeline[:-1].transform(data)
    except ValueError as exc:
        raise EvaluationError(f"Cannot compute window features: {exc}") from exc
    return features, np.asarray(pipeline[-1].predict(features))


def evaluate(
    features: np.ndarray,
    states: np.ndarray,
    metadata: dict,
    data: pd.DataFrame,
    label_column: str | None,
    lag: int,
) -> dict:
    """Compute every metric of the states; returns the content of metrics.json."""
    window_size, step = int(metadata["window_size"]), int(metadata["step"])
    n_states = int(metadata.get("n_states", states.max() + 1))
    metrics = {"n_windows": len(states)}
    metrics.update(cluster_metrics(features, states))
    counts = np.bincount(states, minlength=n_states)
    details = {
        "window_size": window_size,
        "step": step,
        "n_states": n_states,
        "state_counts": {str(state): int(count) for state, count in enumerate(counts)},
        "label_column": None,
        "label_lag_windows": lag,
    }
    if label_column and label_column in data.columns:
        details["label_column"] = label_column
        label_scores, label_details = label_metrics(
            data[label_column], states, window_size, step, lag
        )
        metrics.update(label_scores)
        details.update(label_details)
    elif label_column:
        logger.info(
            "No label column %r in the data; label metrics skipped", label_column
        )
    return {
        "metrics": metrics,
        "evaluation": details,
        "model": {
            "data_asset_name": metadata.get("data_asset_name"),
            "data_asset_version": metadata.get("data_asset_version"),
        },
    }


def state_colors(n_states: int) -> list:
    palette = plt.get_cmap("tab10")
    return [palette(index % MAX_PLOTTED_STATES) for index in range(n_states)]


def time_axis(data: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Return the x values of the rows (timestamps, or row numbers) and their label."""
    if TIME_COLUMN in data.columns:
        return pd.to_datetime(data[TIME_COLUMN]).to_numpy(), f"{TIME_COLUMN} (UTC)"
    return np.arange(len(data)), "row"


def draw_state_bands(axes, x, states, window_size: int, step: int, colors) -> None:
    """Shade each window's span in its state's colour, up to the next window's start."""
    for index, state in enumerate(states):
        start = index * step
        is_last = index == len(states) - 1
        end = min(start + (window_size if is_last else step), len(x) - 1)
        for axis in axes:
            axis.axvspan(x[start], x[end], color=colors[state], alpha=0.25, linewidth=0)


def add_state_legend(axis, colors) -> None:
    """Add a legend of the state colours beside the axis's own legend."""
    axis.add_artist(axis.legend(loc="upper left", fontsize="small"))
    handles = [plt.Rectangle((0, 0), 1, 1, color=color, alpha=0.4) for color in colors]
    labels = [f"state {state}" for state in range(len(colors))]
    axis.legend(handles, labels, loc="upper right", fontsize="small")


def plotted_labels(labels: pd.Series) -> tuple[np.ndarray, list | None]:
    """Return the labels as y values, and the tick names when they are not numbers.

    Text labels such as ``"off"`` and ``"run"`` are plotted as 0, 1, ... in
    sorted order. Missing labels become NaN, which leaves a gap in the line.
    """
    if pd.api.types.is_numeric_dtype(labels):
        return labels.to_numpy(dtype=float), None
    codes, names = pd.factorize(labels, sort=True)
    values = codes.astype(float)
    values[codes < 0] = np.nan
    return values, [str(name) for name in names]


def plot_states_over_time(
    data: pd.DataFrame,
    signal_columns: Sequence[str],
    states: np.ndarray,
    window_size: int,
    step: int,
    label_column: str | None,
    path: Path,
) -> None:
    """Plot the signals with one colour band per window state, and the labels below."""
    has_labels = bool(label_column) and label_column in data.columns
    x, x_label = time_axis(data)
    colors = state_colors(int(states.max()) + 1)
    n_axes = 2 if has_labels else 1
    figure, axes = plt.subplots(
        n_axes, 1, figsize=(14, 4 + 2 * n_axes), sharex=True, squeeze=False
    )
    axes = axes[:, 0]

    for column in signal_columns:
        axes[0].plot(x, data[column].to_numpy(), linewidth=0.4, label=column)
    axes[0].set_ylabel("signal")
    axes[0].set_title(f"States per window ({window_size} rows, step {step})")
    if has_labels:
        labels = data[label_column].where(data[label_column] != NO_LABEL)
        values, names = plotted_labels(labels)
        axes[1].step(
            x,
            values,
            where="post",
            color="black",
            linewidth=0.8,
            label=f"label ({label_column})",
        )
        axes[1].set_ylabel(label_column)
        if names is None:
            axes[1].yaxis.get_major_locator().set_params(integer=True)
        else:
            axes[1].set_yticks(range(len(names)), names)
        axes[1].legend(loc="upper left", fontsize="small")

    draw_state_bands(axes, x, states, window_size, step, colors)
    add_state_legend(axes[0], colors)
    axes[-1].set_xlabel(x_label)
    axes[-1].set_xlim(x[0], x[-1])
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_clusters(features: np.ndarray, states: np.ndarray, path: Path) -> None:
    """Plot the scaled window features on their first two principal components."""
    n_components = min(2, features.shape[0], features.shape[1])
    projected = PCA(n_components=n_components).fit_transform(features)
    if n_components == 1:
        projected = np.column_stack([projected, np.zeros(len(projected))])
    colors = state_colors(int(states.max()) + 1)
    figure, axis = plt.subplots(figsize=(7, 6))
    for state in np.unique(states):
        chosen = states == state
        axis.scatter(
            projected[chosen, 0],
            projected[chosen, 1],
            s=20,
            color=colors[state],
            label=f"state {state} ({chosen.sum()})",
        )
    axis.set_xlabel("principal component 1")
    axis.set_ylabel("principal component 2")
    axis.set_title("Window features (scaled), first two principal components")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


@contextlib.contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """Yield an empty staging folder and move its content into ``output`` on success.

    The staging folder sits beside ``output`` when its parent is writable, so
    the final step is one rename. Otherwise it sits inside ``output`` and its
    entries are renamed one by one. A failure leaves ``output`` as it was.
    """
    output.mkdir(parents=True, exist_ok=True)
    if any(output.iterdir()):
        raise EvaluationError(
            f"Output folder {output} is not empty. Pass an empty or new folder."
        )
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent)
        )
    except OSError:
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=output))
    # mkdtemp creates the folder as 0700; outputs are readable by all.
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


def write_outputs(
    report: dict,
    features: np.ndarray,
    states: np.ndarray,
    data: pd.DataFrame,
    metadata: dict,
    label_column: str | None,
    metrics_dir: Path,
    plots_dir: Path,
) -> None:
    """Write the plots and metrics.json, each output folder atomically."""
    with staged_output(plots_dir) as staging:
        plot_states_over_time(
            data,
            metadata["feature_columns"],
            states,
            int(metadata["window_size"]),
            int(metadata["step"]),
            label_column,
            staging / STATES_PLOT,
        )
        plot_clusters(features, states, staging / CLUSTERS_PLOT)
    with staged_output(metrics_dir) as staging:
        (staging / METRICS_FILE).write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )


def log_evaluation(report: dict, plots_dir: Path) -> None:
    with mlflow.start_run():
        mlflow.log_metrics(report["metrics"])
        mlflow.log_dict(report, METRICS_FILE)
        mlflow.log_artifacts(str(plots_dir), artifact_path="plots")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="MLflow model folder from train_state_identifier",
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="data asset folder containing data.parquet",
    )
    parser.add_argument(
        "--label-column",
        nargs="+",
        default=["class"],
        help="label column compared with the states, if present",
    )
    parser.add_argument(
        "--label-lag",
        type=int,
        default=1,
        help="windows between a window and the label it is compared "
        "with in the lag-corrected scores (default 1)",
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        required=True,
        help="empty output folder for metrics.json",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        required=True,
        help="empty output folder for the PNG plots",
    )
    args = parser.parse_args(argv)
    # Azure ML does not quote values, so a column name with spaces arrives split.
    args.label_column = " ".join(args.label_column)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    started = time.perf_counter()
    # Loading a pickled model runs code from it. MLflow 3.15 allows it by default,
    # 3.17 raises an error unless this is set. The model input is the output of
    # this pipeline's training step.
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    try:
        if args.label_lag < 0:
            raise EvaluationError(
                f"label_lag must be 0 or more windows, got {args.label_lag}."
            )
        logger.info("Step 1 of 3: loading the model from %s", args.model)
        pipeline, metadata = load_state_identifier(args.model)
        data, manifest = read_data(args.data)
        logger.info("Step 2 of 3: evaluating on %d rows from %s", len(data), args.data)
        label_column = args.label_column or None
        features, states = compute_states(pipeline, data)
        report = evaluate(
            features, states, metadata, data, label_column, args.label_lag
        )
        report["data"] = {
            "name": manifest.get("name"),
            "version": manifest.get("version"),
        }
        logger.info("Metrics: %s", json.dumps(report["metrics"]))
        logger.info(
            "Step 3 of 3: writing metrics to %s and plots to %s",
            args.metrics,
            args.plots,
        )
        write_outputs(
            report,
            features,
            states,
            data,
            metadata,
            label_column,
            args.metrics,
            args.plots,
        )
    except EvaluationError as exc:
        logger.error("%s", exc)
        return 2
    log_evaluation(report, args.plots)
    logger.info(
        "Evaluated %d windows in %.1f s",
        report["metrics"]["n_windows"],
        time.perf_counter() - started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
