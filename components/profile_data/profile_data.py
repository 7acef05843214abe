"""Profile a time-series table as one self-contained HTML report with figures.

The report shows the signals over time, their distributions, the intervals
between rows with the gaps among them, the correlation between signals, a table
of summary statistics and the median sampling interval. The figures are also
written as PNG files beside the report and logged to the MLflow run of the step.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from pathlib import Path

import pandas as pd
from profile_figures import interval_seconds, render_figures
from profile_html import render_html

logger = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
LABEL_COLUMN = "class"
# Intervals longer than this multiple of the median interval count as gaps.
GAP_FACTOR = 2.0
MAX_LISTED_GAPS = 50


class ProfileError(Exception):
    """Input that cannot be profiled; the message names the value and the fix."""


def parse_columns(text: str) -> list[str]:
    columns = [name.strip() for name in text.split(",") if name.strip()]
    if not columns:
        raise ProfileError(
            f"signal_columns {text!r} names no column. Pass a comma-separated list "
            "such as 'ph1,ph2,ph3'."
        )
    return columns


def load_frame(path: Path, signals: list[str], timestamp_column: str) -> pd.DataFrame:
    data_file = path / DATA_FILE if path.is_dir() else path
    if not data_file.is_file():
        raise ProfileError(
            f"{data_file} not found. Pass the validated_data output of the validate "
            "step, a folder with data.parquet."
        )
    df = pd.read_parquet(data_file)
    missing = [name for name in [timestamp_column, *signals] if name not in df]
    if missing:
        raise ProfileError(
            f"Column(s) {missing} not found in {data_file}; it has columns "
            f"{list(map(str, df.columns))}. Set signal_columns and timestamp_column "
            "to names that exist."
        )
    if len(df) == 0:
        raise ProfileError(f"{data_file} has no rows; there is nothing to profile.")
    return df


def find_gaps(timestamps: pd.Series, threshold: float) -> list[dict]:
    steps = interval_seconds(timestamps)
    positions = (steps > threshold).to_numpy().nonzero()[0]
    return [
        {
            "row": int(position),
            "start": timestamps.iloc[position - 1].isoformat(),
            "end": timestamps.iloc[position].isoformat(),
            "seconds": float(steps.iloc[position]),
        }
        for position in positions
    ]


def summarize(df: pd.DataFrame, signals: list[str], timestamp_column: str) -> dict:
    """Compute the figures and tables of the report that are not plots."""
    timestamps = df[timestamp_column]
    steps = interval_seconds(timestamps).iloc[1:]
    median = float(steps.median()) if len(steps) else None
    threshold = GAP_FACTOR * median if median else None
    gaps = find_gaps(timestamps, threshold) if threshold else []
    stats = df[signals].describe().T
    stats["missing"] = df[signals].isna().sum()
    summary = {
        "row_count": len(df),
        "columns": list(map(str, df.columns)),
        "time_start": timestamps.iloc[0].isoformat(),
        "time_end": timestamps.iloc[-1].isoformat(),
        "duration_seconds": (timestamps.iloc[-1] - timestamps.iloc[0]).total_seconds(),
        "sampling_interval_seconds": median,
        "gap_factor": GAP_FACTOR,
        "gap_threshold_seconds": threshold,
        "gap_count": len(gaps),
        "gaps": gaps[:MAX_LISTED_GAPS],
        "statistics": json.loads(stats.to_json(orient="index")),
        "correlations": json.loads(df[signals].corr().to_json(orient="index")),
    }
    if LABEL_COLUMN in df:
        counts = df[LABEL_COLUMN].value_counts().sort_index()
        summary["label_column"] = LABEL_COLUMN
        summary["label_counts"] = {
            str(key): int(value) for key, value in counts.items()
        }
    return summary


def write_atomic(folder: Path, name: str, content: bytes) -> Path:
    target = folder / name
    partial = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        partial.write_bytes(content)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def mlflow_configured() -> bool:
    """Return True when the step runs inside an MLflow run (Azure ML or the runner)."""
    return bool(
        os.environ.get("MLFLOW_RUN_ID") or os.environ.get("MLFLOW_TRACKING_URI")
    )


def log_to_mlflow(folder: Path, names: list[str], summary: dict) -> None:
    import mlflow

    with mlflow.start_run():
        for name in names:
            mlflow.log_artifact(str(folder / name), artifact_path="data_profile")
        metrics = {
            "row_count": summary["row_count"],
            "gap_count": summary["gap_count"],
            "duration_seconds": summary["duration_seconds"],
        }
        if summary["sampling_interval_seconds"] is not None:
            metrics["sampling_interval_seconds"] = summary["sampling_interval_seconds"]
        mlflow.log_metrics(metrics)
    logger.info("Logged %d files and %d metrics to MLflow", len(names), len(metrics))


def write_report(report_dir: Path, summary: dict, images: dict[str, bytes]) -> None:
    """Write the figures, summary.json and, last, report.html to ``report_dir``."""
    report_dir.mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        write_atomic(report_dir, name, png)
    summary_json = json.dumps(summary, indent=2).encode("utf-8")
    write_atomic(report_dir, SUMMARY_FILE, summary_json)
    page = render_html(summary, images, "Data profile")
    write_atomic(report_dir, REPORT_FILE, page.encode("utf-8"))
    logger.info("Wrote %s and %d figures to %s", REPORT_FILE, len(images), report_dir)


def try_log_to_mlflow(report_dir: Path, names: list[str], summary: dict) -> None:
    """Log the report to MLflow, warning instead of failing when that fails.

    The report folder is the step's output and MLflow keeps copies for browsing,
    so a tracking failure must not fail the step.
    """
    try:
        log_to_mlflow(report_dir, names, summary)
    except Exception as exc:  # noqa: BLE001 - any tracking error only warns
        logger.warning(
            "Could not log the report to MLflow (%s: %s); it is in %s",
            type(exc).__name__,
            exc,
            report_dir,
        )


def profile(
    data: Path,
    report_dir: Path,
    signals: list[str],
    timestamp_column: str = "DateTime",
    max_plot_points: int = 4000,
    log_mlflow: bool | None = None,
) -> dict:
    """Write report.html, the PNG figures and summary.json to ``report_dir``.

    With ``log_mlflow`` None, the files go to MLflow when the environment names
    an MLflow run or tracking store.
    """
    if max_plot_points < 10:
        raise ProfileError(
            f"max_plot_points must be at least 10, got {max_plot_points}. Pass the "
            "number of points to plot per signal, for example 4000."
        )
    df = load_frame(data, signals, timestamp_column)
    logger.info("Profiling %d rows of %s", len(df), ", ".join(signals))
    summary = {"source": str(data), **summarize(df, signals, timestamp_column)}
    images = render_figures(df, signals, timestamp_column, summary, max_plot_points)
    write_report(report_dir, summary, images)

    if log_mlflow is None:
        log_mlflow = mlflow_configured()
    if log_mlflow:
        try_log_to_mlflow(report_dir, [REPORT_FILE, SUMMARY_FILE, *images], summary)
    else:
        logger.info(
            "MLFLOW_RUN_ID and MLFLOW_TRACKING_URI are unset; not logging to MLflow"
        )
    return summary


def joined(value: str | list[str]) -> str:
    """Rejoin a value that the command line split at spaces (Azure ML does not quote)."""
    return " ".join(value) if isinstance(value, list) else value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with data.parquet")
    parser.add_argument("--signal-columns", nargs="+", default="ph1,ph2,ph3")
    parser.add_argument("--timestamp-column", nargs="+", default="DateTime")
    parser.add_argument("--max-plot-points", type=int, default=4000)
    parser.add_argument("--report", required=True, help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
        profile(
            Path(args.data),
            Path(args.report),
            parse_columns(joined(args.signal_columns)),
            joined(args.timestamp_column),
            args.max_plot_points,
        )
    except ProfileError as exc:
        print(f"Profile failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
