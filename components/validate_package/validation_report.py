"""The validation report: a PNG of signals and states over time, in one HTML page."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def plot_predictions(
    frame: pd.DataFrame, inputs: dict, result: dict, path: Path
) -> None:
    """Plot the input signals, and the model's and the edge package's states per window."""
    if "DateTime" in frame.columns:
        times = pd.to_datetime(frame["DateTime"])
    else:
        times = pd.Series(np.arange(len(frame)))
    window, step = result["window_size"], result["step"]
    expected, edge = result["expected_states"], result["edge_states"]
    ends = [min(i * step + window - 1, len(frame) - 1) for i in range(len(expected))]

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    for name in inputs:
        if pd.api.types.is_numeric_dtype(frame[name]):
            top.plot(times, frame[name], linewidth=0.6, label=name)
    top.set_ylabel("signal")
    top.legend(loc="upper right", fontsize="small")
    # Each state is drawn over the rows of its window, up to the window's last row.
    bottom.step(times.iloc[ends], expected, where="pre", label="model", linewidth=2)
    n_edge = min(len(edge), len(ends))
    bottom.step(
        times.iloc[ends[:n_edge]],
        edge[:n_edge],
        where="pre",
        label="edge package",
        linestyle="--",
    )
    wrong = [i for i in range(n_edge) if edge[i] != expected[i]]
    if wrong:
        bottom.scatter(
            times.iloc[[ends[i] for i in wrong]],
            [edge[i] for i in wrong],
            color="red",
            zorder=3,
            label="mismatch",
        )
    bottom.set_ylabel("state")
    bottom.yaxis.get_major_locator().set_params(integer=True)
    bottom.legend(loc="upper right", fontsize="small")
    verdict = "passed" if result["passed"] else "FAILED"
    figure.suptitle(
        f"{result['edge_package']}: {len(expected)} windows, validation {verdict}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def render_html(result: dict, png: Path) -> str:
    image = base64.b64encode(png.read_bytes()).decode("ascii")
    rows = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(str(result[key]))}</td></tr>"
        for key in (
            "passed",
            "first_failure",
            "n_failures",
            "edge_package",
            "package_id",
            "package_version",
            "model_uri",
            "data",
            "n_rows",
            "window_size",
            "step",
            "n_windows",
            "n_outputs",
            "runner_seconds",
        )
    )
    failures = "".join(f"<li>{html.escape(text)}</li>" for text in result["failures"])
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>Validation of {html.escape(result['edge_package'])}</title></head>"
        f"<body><h1>Validation of {html.escape(result['edge_package'])}</h1>"
        f"<table>{rows}</table>"
        f"<img alt='signals and states' src='data:image/png;base64,{image}'>"
        f"<h2>Failures</h2><ul>{failures or '<li>none</li>'}</ul>"
        "</body></html>\n"
    )
