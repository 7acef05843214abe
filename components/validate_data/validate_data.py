"""Check a time-series table before it becomes a data asset.

The checks: the file is readable and not empty, and the timestamp and signal
columns exist. Signals are finite numbers, and timestamps parse and are sorted
and unique. No interval between rows is longer than ``max_gap_seconds``, and no
signal has a larger fraction of missing values than ``max_missing_fraction``.
The step writes ``report.json`` either way and passes the data on only when
every check passed.
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
from validation_checks import check_frame, failed

logger = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
REPORT_FILE = "report.json"
DEFAULT_SIGNALS = "ph1,ph2,ph3"


class ValidationError(Exception):
    """Invalid data or settings; ``report`` contains every check result, if any ran."""

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
