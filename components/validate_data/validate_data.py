"""Check a time-series table before it becomes a data asset.

Checks: the file is readable and not empty, the timestamp and signal columns
exist, signals are numeric, timestamps parse and are sorted and unique, no
interval between rows is longer than ``max_gap_seconds``, and no signal has a
larger share of missing values than ``max_missing_fraction``. The step writes
``report.json`` either way and passes the data on only when every check passed.
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
import pyarrow as pa

logger = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
REPORT_FILE = "report.json"
DEFAULT_SIGNALS = "ph1,ph2,ph3"
# Intervals longer than this multiple of the median are listed as gaps in the
# report; only those longer than max_gap_seconds fail the validation.
GAP_REPORT_FACTOR = 2.0
MAX_LISTED_GAPS = 100


class ValidationError(Exception):
    """Data that failed one or more checks; ``report`` holds every check."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report


def parse_columns(text: str) -> list[str]:
    """Split a comma-separated list of column names."""
    columns = [name.strip() for name in text.split(",") if name.strip()]
    if not columns:
        raise ValidationError(
            f"signal_columns {text!r} names no column. Pass a comma-separated list "
            f"such as {DEFAULT_SIGNALS!r}."
        )
    return columns


def find_data_file(path: Path) -> Path:
    if path.is_dir():
        candidate = path / DATA_FILE
        if not candidate.is_file():
            files = sorted(child.name for child in path.iterdir()) or ["nothing"]
            raise ValidationError(
                f"Input folder {path} has no {DATA_FILE} (it contains "
                f"{', '.join(files)}). Pass the output folder of the ingest step."
            )
        return candidate
    if not path.is_file():
        raise ValidationError(f"Input {path} does not exist. Pass the ingested data.")
    return path


def load_frame(path: Path) -> pd.DataFrame:
    """Read ``path`` (a folder with data.parquet, a parquet file or a CSV file)."""
    data_file = find_data_file(path)
    if data_file.suffix.lower() == ".csv":
        try:
            return pd.read_csv(data_file)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"{data_file} is not a readable CSV file: {exc}. Export it again as "
                "comma-separated UTF-8 text with one header row."
            ) from exc
    try:
        return pd.read_parquet(data_file)
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(
            f"{data_file} is not a readable parquet file: {exc}; re-export it or "
            "ingest the CSV"
        ) from exc


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
            continue
        coerced = pd.to_numeric(values, errors="coerce")
        bad = (coerced.isna() & values.notna()).to_numpy().nonzero()[0]
        if pd.api.types.is_bool_dtype(values):
            detail = "it holds true/false values"
        elif len(bad):
            position = int(bad[0])
            detail = (
                f"{len(bad)} value(s) are not numbers, the first at "
                f"{row_label(timestamps, position)}: {values.iloc[position]!r}"
            )
        else:
            detail = "it holds numbers stored as text"
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
        timestamps = parse_timestamp_column(df[timestamp_column])
        checks.append(check_timestamps_parse(df[timestamp_column], timestamps))
        if checks[-1]["passed"]:
            df = df.assign(**{timestamp_column: timestamps})
            checks.append(check_sorted(timestamps))
            checks.append(check_unique(timestamps))
            if checks[-2]["passed"]:
                checks.append(check_max_gap(timestamps, max_gap_seconds))
                report.update(describe_timing(timestamps))
        else:
            timestamps = None
    if len(df):
        checks.append(check_numeric(df, signals, timestamps))
        checks.append(check_missing(df, signals, max_missing_fraction, timestamps))
    report["checks"] = checks
    report["valid"] = all(check["passed"] for check in checks)
    return report, df


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


def failure_message(report: dict, source: str) -> str:
    """Build the error text: one summary line, then one line per failed check."""
    failures = [check for check in report["checks"] if not check["passed"]]
    names = ", ".join(check["name"] for check in failures)
    summary = (
        f"Validation failed: {len(failures)} of {len(report['checks'])} checks "
        f"failed ({names}) for {source}"
    )
    lines = [summary]
    lines += [f"- {check['name']}: {check['message']}" for check in failures]
    return "\n".join(lines)


def validate_frame(
    df: pd.DataFrame,
    signals: list[str],
    timestamp_column: str = "DateTime",
    max_gap_seconds: float = 60.0,
    max_missing_fraction: float = 0.0,
    source: str = "the data",
) -> tuple[dict, pd.DataFrame]:
    """Run every check and raise ValidationError if any failed."""
    check_limits(max_gap_seconds, max_missing_fraction)
    report, df = check_frame(
        df, signals, timestamp_column, max_gap_seconds, max_missing_fraction
    )
    if not report["valid"]:
        raise ValidationError(failure_message(report, source), report)
    return report, df


def check_limits(max_gap_seconds: float, max_missing_fraction: float) -> None:
    if not max_gap_seconds > 0:
        raise ValidationError(
            f"max_gap_seconds must be greater than 0, got {max_gap_seconds}. Pass "
            "the longest pause between two rows you accept, in seconds."
        )
    if not 0 <= max_missing_fraction <= 1:
        raise ValidationError(
            f"max_missing_fraction must be between 0 and 1, got "
            f"{max_missing_fraction}. Pass for example 0.01 to accept 1% missing "
            "values per signal."
        )


def write_atomic(folder: Path, name: str, write) -> Path:
    """Call ``write(path)`` on a temporary file and rename it to ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    partial = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def write_report(report: dict, folder: Path) -> Path:
    text = json.dumps(report, indent=2, default=str)
    return write_atomic(folder, REPORT_FILE, lambda path: path.write_text(text))


def validate(
    data: Path,
    report_dir: Path,
    validated_dir: Path | None,
    signals: list[str],
    timestamp_column: str = "DateTime",
    max_gap_seconds: float = 60.0,
    max_missing_fraction: float = 0.0,
) -> dict:
    """Validate ``data``; write the report, and the data only when it is valid."""
    try:
        df = load_frame(data)
    except ValidationError as exc:
        report = {
            "source": str(data),
            "valid": False,
            "checks": [failed("readable", str(exc))],
        }
        write_report(report, report_dir)
        raise ValidationError(failure_message(report, str(data)), report) from exc
    logger.info(
        "Checking %d rows and %d columns from %s", len(df), len(df.columns), data
    )
    try:
        report, df = validate_frame(
            df,
            signals,
            timestamp_column,
            max_gap_seconds,
            max_missing_fraction,
            source=str(data),
        )
    except ValidationError as exc:
        if exc.report is not None:
            write_report({"source": str(data), **exc.report}, report_dir)
        raise
    report = {"source": str(data), **report}
    write_report(report, report_dir)
    logger.info(
        "All %d checks passed; median sampling interval %s s, %d gap(s) longer "
        "than %s s",
        len(report["checks"]),
        report["sampling_interval_seconds"],
        report["gaps"]["count"],
        report["gaps"]["threshold_seconds"],
    )
    if validated_dir is not None:
        target = write_atomic(
            validated_dir, DATA_FILE, lambda path: df.to_parquet(path, index=False)
        )
        logger.info("Wrote validated data to %s", target)
    return report


def joined(value: str | list[str]) -> str:
    """Rejoin a value that the command line split at spaces (Azure ML does not quote)."""
    return " ".join(value) if isinstance(value, list) else value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with data.parquet")
    parser.add_argument("--signal-columns", nargs="+", default=DEFAULT_SIGNALS)
    parser.add_argument("--timestamp-column", nargs="+", default="DateTime")
    parser.add_argument("--max-gap-seconds", type=float, default=60.0)
    parser.add_argument("--max-missing-fraction", type=float, default=0.0)
    parser.add_argument("--validation-report", required=True, help="output folder")
    parser.add_argument("--validated-data", required=True, help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
        validate(
            Path(args.data),
            Path(args.validation_report),
            Path(args.validated_data),
            parse_columns(joined(args.signal_columns)),
            joined(args.timestamp_column),
            args.max_gap_seconds,
            args.max_missing_fraction,
        )
    except ValidationError as exc:
        # Messages built from a report start with their own summary line.
        prefix = "" if exc.report is not None else "Validation failed: "
        print(f"{prefix}{exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
