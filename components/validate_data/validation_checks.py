"""The checks of the validate_data component, each returning one result dict.

A result is ``{"name", "passed"}`` plus, for a failed check, a ``message`` that
names the column, the row (position and timestamp) or the value, and the fix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Intervals longer than this multiple of the median are listed as gaps in the
# report; only those longer than max_gap_seconds fail the validation.
GAP_REPORT_FACTOR = 2.0
MAX_LISTED_GAPS = 100


def format_time(value) -> str:
    if value is None or pd.isna(value):
        return "NaT"
    return pd.Timestamp(value).isoformat()


def row_label(timestamps: pd.Series | None, position: int) -> str:
    """Describe a row by its position and, when known, its timestamp."""
    if timestamps is None:
        return f"row {position}"
    return f"row {position} ({format_time(timestamps.iloc[position])})"


def sentence(parts: list[str]) -> str:
    """Join clauses with semicolons and capitalize the first letter only."""
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


def passed(name: str, **details) -> dict:
    return {"name": name, "passed": True, **details}


def failed(name: str, message: str, **details) -> dict:
    return {"name": name, "passed": False, "message": message, **details}


def check_not_empty(df: pd.DataFrame) -> dict:
    if len(df) == 0:
        return failed(
            "not_empty",
            "The data has no rows. Check that the export contains data for the "
            "time range you expect.",
        )
    return passed("not_empty", row_count=len(df))


def check_columns_present(df: pd.DataFrame, required: list[str]) -> dict:
    missing = [name for name in required if name not in df.columns]
    if missing:
        return failed(
            "columns_present",
            f"Required column(s) {missing} not found; the data has columns "
            f"{list(map(str, df.columns))}. Rename the columns in the source, or set "
            "signal_columns and timestamp_column to names that exist.",
            missing=missing,
        )
    return passed("columns_present")


def check_numeric(
    df: pd.DataFrame, signals: list[str], timestamps: pd.Series | None
) -> dict:
    problems = []
    for column in signals:
        if column not in df.columns:
            continue
        values = df[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(
            values
        ):
            problems += infinite_values(values, timestamps)
            continue
        coerced = pd.to_numeric(values, errors="coerce")
        bad = (coerced.isna() & values.notna()).to_numpy().nonzero()[0]
        if pd.api.types.is_bool_dtype(values):
            detail = "it contains true/false values"
        elif len(bad):
            position = int(bad[0])
            detail = (
                f"{len(bad)} value(s) are not numbers, the first at "
                f"{row_label(timestamps, position)}: {values.iloc[position]!r}"
            )
        else:
            detail = "it contains numbers stored as text"
        problems.append(
            f"column {column!r} is not numeric (dtype {values.dtype}): {detail}"
        )
    if problems:
        return failed(
            "numeric_signals",
            sentence(problems)
            + ". Export the signals as numbers (float), fix or remove those rows, or "
            "drop the column from signal_columns.",
        )
    return passed("numeric_signals")


def infinite_values(values: pd.Series, timestamps: pd.Series | None) -> list[str]:
    """Describe the infinite values of a numeric column, or return an empty list."""
    infinite = np.isinf(values.to_numpy(dtype=float)).nonzero()[0]
    if not len(infinite):
        return []
    position = int(infinite[0])
    problem = (
        f"column {values.name!r} has {len(infinite)} infinite value(s), the first "
        f"at {row_label(timestamps, position)}: {values.iloc[position]}"
    )
    return [problem]


def parse_timestamp_column(values: pd.Series) -> pd.Series:
    """Return the column as UTC timestamps; unparseable values become NaT."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    return pd.to_datetime(values, utc=True, errors="coerce")


def check_timestamps_parse(values: pd.Series, parsed: pd.Series) -> dict:
    bad = parsed.isna().to_numpy().nonzero()[0]
    if len(bad):
        position = int(bad[0])
        return failed(
            "timestamps_parse",
            f"Timestamp column {values.name!r} has {len(bad)} missing or unparseable "
            f"value(s), the first at row {position}: {values.iloc[position]!r}. Fix "
            "or remove those rows in the source.",
            count=len(bad),
            first_row=position,
        )
    return passed("timestamps_parse")


def check_sorted(timestamps: pd.Series) -> dict:
    backwards = (timestamps.diff() < pd.Timedelta(0)).to_numpy().nonzero()[0]
    if len(backwards):
        position = int(backwards[0])
        return failed(
            "timestamps_sorted",
            f"Timestamps are not sorted: {len(backwards)} row(s) go back in time, "
            f"the first at row {position} ({format_time(timestamps.iloc[position])}), "
            f"which is earlier than row {position - 1} "
            f"({format_time(timestamps.iloc[position - 1])}). Sort the rows by "
            f"{timestamps.name} before ingesting.",
            count=len(backwards),
            first_row=position,
        )
    return passed("timestamps_sorted")


def check_unique(timestamps: pd.Series) -> dict:
    duplicated = timestamps.duplicated().to_numpy().nonzero()[0]
    if len(duplicated):
        position = int(duplicated[0])
        value = timestamps.iloc[position]
        first = int((timestamps == value).to_numpy().nonzero()[0][0])
        return failed(
            "timestamps_unique",
            f"Timestamps are not unique: {len(duplicated)} row(s) repeat an earlier "
            f"timestamp, the first at row {position}, which has the same timestamp "
            f"{format_time(value)} as row {first}. Remove the duplicate rows or "
            "aggregate them in the source.",
            count=len(duplicated),
            first_row=position,
        )
    return passed("timestamps_unique")


def median_interval_seconds(timestamps: pd.Series) -> float | None:
    steps = timestamps.diff().dt.total_seconds().iloc[1:]
    steps = steps[steps > 0]
    return float(steps.median()) if len(steps) else None


def find_gaps(timestamps: pd.Series, threshold_seconds: float) -> list[dict]:
    """List the intervals between consecutive rows longer than the threshold."""
    steps = timestamps.diff().dt.total_seconds()
    positions = (steps > threshold_seconds).to_numpy().nonzero()[0]
    return [
        {
            "row": int(position),
            "start": format_time(timestamps.iloc[position - 1]),
            "end": format_time(timestamps.iloc[position]),
            "seconds": float(steps.iloc[position]),
        }
        for position in positions
    ]


def check_max_gap(timestamps: pd.Series, max_gap_seconds: float) -> dict:
    gaps = find_gaps(timestamps, max_gap_seconds)
    if gaps:
        first = gaps[0]
        longest = max(gap["seconds"] for gap in gaps)
        return failed(
            "max_gap",
            f"Found {len(gaps)} gap(s) longer than max_gap_seconds={max_gap_seconds:g}"
            f" (longest {longest:g} s); the first is {first['seconds']:g} s between "
            f"row {first['row'] - 1} ({first['start']}) and row {first['row']} "
            f"({first['end']}). Split the recording at the gap, fill it, or raise "
            "max_gap_seconds if such gaps are expected.",
            count=len(gaps),
            gaps=gaps[:MAX_LISTED_GAPS],
        )
    return passed("max_gap")


def count_missing(df: pd.DataFrame, signals: list[str]) -> dict[str, int]:
    return {column: int(df[column].isna().sum()) for column in signals if column in df}


def check_missing(
    df: pd.DataFrame,
    signals: list[str],
    max_missing_fraction: float,
    timestamps: pd.Series | None,
) -> dict:
    problems = []
    for column, count in count_missing(df, signals).items():
        fraction = count / len(df) if len(df) else 0.0
        if fraction > max_missing_fraction:
            position = int(df[column].isna().to_numpy().nonzero()[0][0])
            problems.append(
                f"column {column!r} has {count} missing value(s) ({fraction:.2%}), "
                f"the first at {row_label(timestamps, position)}"
            )
    if problems:
        return failed(
            "missing_values",
            sentence(problems)
            + f", more than max_missing_fraction={max_missing_fraction:g}. Fill or "
            "drop the missing values in the source, or raise max_missing_fraction.",
        )
    return passed("missing_values")


def check_frame(
    df: pd.DataFrame,
    signals: list[str],
    timestamp_column: str = "DateTime",
    max_gap_seconds: float = 60.0,
    max_missing_fraction: float = 0.0,
) -> tuple[dict, pd.DataFrame]:
    """Run every check; return the report and the data with UTC timestamps."""
    checks = [
        check_not_empty(df),
        check_columns_present(df, [timestamp_column, *signals]),
    ]
    report = {
        "row_count": len(df),
        "columns": list(map(str, df.columns)),
        "timestamp_column": timestamp_column,
        "signal_columns": signals,
        "max_gap_seconds": max_gap_seconds,
        "max_missing_fraction": max_missing_fraction,
        "missing_values": count_missing(df, signals),
    }
    timestamps = None
    if len(df) and timestamp_column in df.columns:
        parsed = parse_timestamp_column(df[timestamp_column])
        parse_check = check_timestamps_parse(df[timestamp_column], parsed)
        checks.append(parse_check)
        if parse_check["passed"]:
            timestamps = parsed
            df = df.assign(**{timestamp_column: timestamps})
            checks += check_timing(timestamps, max_gap_seconds, report)
    if len(df):
        checks.append(check_numeric(df, signals, timestamps))
        checks.append(check_missing(df, signals, max_missing_fraction, timestamps))
    report["checks"] = checks
    report["valid"] = all(check["passed"] for check in checks)
    return report, df


def check_timing(timestamps: pd.Series, max_gap_seconds: float, report: dict) -> list:
    """Check order, uniqueness and gaps; add the timing figures to ``report``."""
    sorted_check = check_sorted(timestamps)
    checks = [sorted_check, check_unique(timestamps)]
    # Intervals between unsorted rows mean nothing, so gaps need sorted rows.
    if sorted_check["passed"]:
        checks.append(check_max_gap(timestamps, max_gap_seconds))
        report.update(describe_timing(timestamps))
    return checks


def describe_timing(timestamps: pd.Series) -> dict:
    median = median_interval_seconds(timestamps)
    threshold = GAP_REPORT_FACTOR * median if median else None
    gaps = find_gaps(timestamps, threshold) if threshold is not None else []
    return {
        "time_start": format_time(timestamps.iloc[0]),
        "time_end": format_time(timestamps.iloc[-1]),
        "sampling_interval_seconds": median,
        "gaps": {
            "threshold_seconds": threshold,
            "count": len(gaps),
            "longest_seconds": max((gap["seconds"] for gap in gaps), default=None),
            "items": gaps[:MAX_LISTED_GAPS],
        },
    }
