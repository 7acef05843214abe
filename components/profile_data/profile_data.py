"""Profile a time-series table as one self-contained HTML report with figures.

The report shows the signals over time, their distributions, the intervals
between rows with the gaps among them, the correlation between signals, a table
of summary statistics and the median sampling interval. The figures are also
written as PNG files beside the report and logged to the MLflow run of the step.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import logging
import math
import os
import sys
import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
LABEL_COLUMN = "class"
# Intervals longer than this multiple of the median interval count as gaps.
GAP_FACTOR = 2.0
MAX_LISTED_GAPS = 50
FIGURE_DPI = 100


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


def downsample(df: pd.DataFrame, column: str, max_points: int) -> pd.DataFrame:
    """Reduce a signal to at most ``max_points`` buckets of mean, min and max.

    Keeping each bucket's min and max shows short spikes that plotting every
    n-th row would drop.
    """
    bucket = max(1, math.ceil(len(df) / max_points))
    groups = np.arange(len(df)) // bucket
    grouped = df[column].groupby(groups)
    timestamps = df.iloc[:, 0].groupby(groups).first()
    return pd.DataFrame(
        {
            "time": timestamps.to_numpy(),
            "mean": grouped.mean().to_numpy(),
            "min": grouped.min().to_numpy(),
            "max": grouped.max().to_numpy(),
        }
    )


def interval_seconds(timestamps: pd.Series) -> pd.Series:
    return timestamps.diff().dt.total_seconds()


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
        "gap_threshold_seconds": threshold,
        "gap_count": len(gaps),
        "gaps": gaps[:MAX_LISTED_GAPS],
        "statistics": json.loads(stats.to_json(orient="index")),
        "correlations": json.loads(df[signals].corr().to_json(orient="index")),
    }
    if LABEL_COLUMN in df:
        counts = df[LABEL_COLUMN].value_counts().sort_index()
        summary["label_counts"] = {
            str(key): int(value) for key, value in counts.items()
        }
    return summary


def plot_signals(
    df: pd.DataFrame,
    signals: list[str],
    timestamp_column: str,
    gaps: list[dict],
    max_points: int,
):
    fig, axes = plt.subplots(
        len(signals),
        1,
        figsize=(12, 2.2 * len(signals) + 0.6),
        sharex=True,
        squeeze=False,
    )
    for ax, column in zip(axes[:, 0], signals):
        points = downsample(df[[timestamp_column, column]], column, max_points)
        ax.fill_between(
            points["time"],
            points["min"],
            points["max"],
            color="tab:blue",
            alpha=0.25,
            linewidth=0,
            label="min to max",
        )
        ax.plot(
            points["time"],
            points["mean"],
            color="tab:blue",
            linewidth=0.8,
            label="mean",
        )
        for gap in gaps:
            ax.axvspan(
                pd.Timestamp(gap["start"]),
                pd.Timestamp(gap["end"]),
                color="tab:red",
                alpha=0.3,
            )
        ax.set_ylabel(column)
        ax.grid(alpha=0.3)
    bucket = max(1, math.ceil(len(df) / max_points))
    axes[0, 0].set_title(
        f"Signals over time ({len(df):,} rows, {bucket} row(s) per plotted point; "
        "gaps in red)"
    )
    axes[0, 0].legend(loc="upper right", fontsize="small")
    axes[-1, 0].set_xlabel(f"{timestamp_column} (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_distributions(df: pd.DataFrame, signals: list[str]):
    columns = min(3, len(signals))
    rows = math.ceil(len(signals) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False
    )
    for ax, column in zip(axes.flat, signals):
        ax.hist(df[column].dropna(), bins=80, color="tab:green")
        ax.set_title(column)
        ax.set_xlabel("value")
        ax.set_ylabel("rows")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(signals) :]:
        ax.set_visible(False)
    fig.suptitle("Distribution of each signal")
    fig.tight_layout()
    return fig


def plot_intervals(
    df: pd.DataFrame, timestamp_column: str, threshold: float | None, max_points: int
):
    steps = pd.DataFrame(
        {
            timestamp_column: df[timestamp_column].iloc[1:],
            "interval": interval_seconds(df[timestamp_column]).iloc[1:],
        }
    )
    fig, ax = plt.subplots(figsize=(12, 3))
    if len(steps):
        # The maximum per bucket keeps every gap visible after downsampling.
        points = downsample(steps, "interval", max_points)
        ax.plot(
            points["time"],
            points["max"],
            color="tab:purple",
            linewidth=0.8,
            label="interval (max per plotted point)",
        )
        if threshold:
            ax.axhline(
                threshold,
                color="tab:red",
                linestyle="--",
                label=f"gap threshold {threshold:g} s",
            )
        # A log scale keeps both the usual interval and long gaps readable.
        positive = points["max"][points["max"] > 0]
        if len(positive) and positive.max() > 10 * positive.min():
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize="small")
    ax.set_title("Interval between consecutive rows")
    ax.set_ylabel("seconds")
    ax.set_xlabel(f"{timestamp_column} (UTC)")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_correlations(df: pd.DataFrame, signals: list[str]):
    corr = df[signals].corr().to_numpy()
    size = max(4.0, 1.0 + 0.9 * len(signals))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(corr, cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_xticks(range(len(signals)), signals, rotation=45, ha="right")
    ax.set_yticks(range(len(signals)), signals)
    for i in range(len(signals)):
        for j in range(len(signals)):
            value = corr[i, j]
            label = "n/a" if np.isnan(value) else f"{value:.3f}"
            color = "white" if abs(value) > 0.6 else "black"
            ax.text(j, i, label, ha="center", va="center", fontsize=9, color=color)
    fig.colorbar(image, ax=ax, label="Pearson correlation")
    ax.set_title("Correlation between signals")
    fig.tight_layout()
    return fig


def render_figures(
    df: pd.DataFrame,
    signals: list[str],
    timestamp_column: str,
    summary: dict,
    max_points: int,
) -> dict[str, bytes]:
    """Return each figure as PNG bytes, keyed by file name."""
    figures = {
        "signals.png": plot_signals(
            df, signals, timestamp_column, summary["gaps"], max_points
        ),
        "distributions.png": plot_distributions(df, signals),
        "intervals.png": plot_intervals(
            df, timestamp_column, summary["gap_threshold_seconds"], max_points
        ),
        "correlations.png": plot_correlations(df, signals),
    }
    images = {}
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=FIGURE_DPI)
        plt.close(fig)
        images[name] = buffer.getvalue()
    return images


def html_table(rows: list[list], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def format_number(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


STAT_COLUMNS = ["count", "missing", "mean", "std", "min", "25%", "50%", "75%", "max"]
FIGURE_CAPTIONS = {
    "signals.png": "Signals over time",
    "distributions.png": "Distributions",
    "intervals.png": "Sampling intervals and gaps",
    "correlations.png": "Correlations",
}
STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1250px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f0f0; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def overview_rows(summary: dict) -> list[list]:
    interval = summary["sampling_interval_seconds"]
    threshold = summary["gap_threshold_seconds"]
    return [
        ["Rows", format_number(summary["row_count"])],
        ["Columns", ", ".join(summary["columns"])],
        ["First timestamp", summary["time_start"]],
        ["Last timestamp", summary["time_end"]],
        ["Duration", f"{summary['duration_seconds']:,.1f} s"],
        ["Median sampling interval", "n/a" if interval is None else f"{interval:g} s"],
        [
            "Gaps",
            f"{summary['gap_count']} interval(s) longer than "
            + ("n/a" if threshold is None else f"{threshold:g} s")
            + f" ({GAP_FACTOR:g} x the median interval)",
        ],
    ]


def render_html(summary: dict, images: dict[str, bytes], title: str) -> str:
    """Build the report page with every figure embedded as base64 PNG."""
    stats_rows = [
        [column] + [format_number(values.get(key)) for key in STAT_COLUMNS]
        for column, values in summary["statistics"].items()
    ]
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        "<h2>Overview</h2>",
        html_table(overview_rows(summary), ["", "value"]),
        "<h2>Summary statistics</h2>",
        html_table(stats_rows, ["signal", *STAT_COLUMNS]),
    ]
    if "label_counts" in summary:
        label_rows = [
            [key, format_number(n)] for key, n in summary["label_counts"].items()
        ]
        sections += [
            f"<h2>Rows per {LABEL_COLUMN}</h2>",
            html_table(label_rows, [LABEL_COLUMN, "rows"]),
        ]
    for name, png in images.items():
        encoded = base64.b64encode(png).decode("ascii")
        caption = html.escape(FIGURE_CAPTIONS.get(name, name))
        sections += [
            f"<h2>{caption}</h2>",
            f'<img src="data:image/png;base64,{encoded}" alt="{caption}">',
        ]
    sections.append("<h2>Gaps</h2>")
    if summary["gaps"]:
        gap_rows = [
            [gap["row"], gap["start"], gap["end"], f"{gap['seconds']:g}"]
            for gap in summary["gaps"]
        ]
        sections.append(
            html_table(
                gap_rows, ["row", "last row before", "first row after", "seconds"]
            )
        )
        if summary["gap_count"] > len(summary["gaps"]):
            sections.append(
                f"<p>The first {len(summary['gaps'])} of {summary['gap_count']} "
                "gaps are listed.</p>"
            )
    else:
        sections.append("<p>No gaps.</p>")
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


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


def profile(
    data: Path,
    report_dir: Path,
    signals: list[str],
    timestamp_column: str = "DateTime",
    max_plot_points: int = 4000,
    log_mlflow: bool | None = None,
) -> dict:
    """Write report.html, the PNG figures and summary.json to ``report_dir``."""
    if max_plot_points < 10:
        raise ProfileError(
            f"max_plot_points must be at least 10, got {max_plot_points}. Pass the "
            "number of points to plot per signal, for example 4000."
        )
    df = load_frame(data, signals, timestamp_column)
    logger.info("Profiling %d rows of %s", len(df), ", ".join(signals))
    summary = summarize(df, signals, timestamp_column)
    images = render_figures(df, signals, timestamp_column, summary, max_plot_points)
    report_dir.mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        write_atomic(report_dir, name, png)
    write_atomic(
        report_dir, SUMMARY_FILE, json.dumps(summary, indent=2).encode("utf-8")
    )
    page = render_html(summary, images, f"Data profile: {data.name or data}")
    write_atomic(report_dir, REPORT_FILE, page.encode("utf-8"))
    logger.info("Wrote %s and %d figures to %s", REPORT_FILE, len(images), report_dir)
    if log_mlflow is None:
        log_mlflow = mlflow_configured()
    if log_mlflow:
        try:
            log_to_mlflow(report_dir, [REPORT_FILE, SUMMARY_FILE, *images], summary)
        except Exception as exc:  # noqa: BLE001 - the report itself is written
            # The report is the step's output; MLflow holds copies for browsing, so
            # a tracking failure is reported without failing the step.
            logger.warning(
                "Could not log the report to MLflow (%s: %s); it is in %s",
                type(exc).__name__,
                exc,
                report_dir,
            )
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
