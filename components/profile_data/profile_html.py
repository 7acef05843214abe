"""The data profile as one self-contained HTML page with embedded PNG figures."""

from __future__ import annotations

import base64
import html
import math


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
        ["Source", summary["source"]],
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
            + f" ({summary['gap_factor']:g} x the median interval)",
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
        label = summary["label_column"]
        sections += [
            f"<h2>Rows per {html.escape(label)}</h2>",
            html_table(label_rows, [label, "rows"]),
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
