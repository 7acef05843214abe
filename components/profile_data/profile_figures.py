"""Figures of the data profile: signals, distributions, intervals, correlations.

Every function returns a matplotlib figure drawn with the Agg backend, so no
display is needed.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

FIGURE_DPI = 100


def downsample(times: pd.Series, values: pd.Series, max_points: int) -> pd.DataFrame:
    """Reduce a signal to at most ``max_points`` buckets of mean, min and max.

    Keeping each bucket's min and max shows short spikes that plotting every
    n-th row would drop. A bucket's time is the time of its first row.
    """
    bucket = max(1, math.ceil(len(values) / max_points))
    groups = np.arange(len(values)) // bucket
    grouped = pd.Series(values.to_numpy()).groupby(groups)
    starts = pd.Series(times.to_numpy()).groupby(groups).first()
    return pd.DataFrame(
        {
            "time": starts.to_numpy(),
            "mean": grouped.mean().to_numpy(),
            "min": grouped.min().to_numpy(),
            "max": grouped.max().to_numpy(),
        }
    )


def interval_seconds(timestamps: pd.Series) -> pd.Series:
    return timestamps.diff().dt.total_seconds()


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
        points = downsample(df[timestamp_column], df[column], max_points)
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
    times = df[timestamp_column].iloc[1:]
    intervals = interval_seconds(df[timestamp_column]).iloc[1:]
    fig, ax = plt.subplots(figsize=(12, 3))
    if len(intervals):
        # The maximum per bucket keeps every gap visible after downsampling.
        points = downsample(times, intervals, max_points)
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
