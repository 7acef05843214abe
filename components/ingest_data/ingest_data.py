"""Read a parquet or CSV file of plant time series and write it as one parquet file.

The source is a local file (what Azure ML hands a job for a ``uri_file`` input,
including one that points at a URL) or an http(s) URL that this script
downloads itself. The timestamp column is parsed as UTC; timestamps without a
time zone are taken to be UTC already.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import urllib.parse
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import requests

logger = logging.getLogger(__name__)

OUTPUT_FILE = "data.parquet"
PARQUET_MAGIC = b"PAR1"
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt", ".csv.gz", ".csv.zip", ".csv.bz2")
DOWNLOAD_TIMEOUT_SECONDS = 60
DOWNLOAD_CHUNK_BYTES = 1 << 20


class IngestError(Exception):
    """A source that cannot be read; the message names the value and the fix."""


def is_url(text: str) -> bool:
    return urllib.parse.urlsplit(text).scheme in ("http", "https")


def display_url(url: str) -> str:
    """Return ``url`` without user info and query, where SAS tokens and keys go."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = "?<redacted>" if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")) + query


def download(url: str, folder: Path) -> Path:
    """Download ``url`` into ``folder`` and return the local file path."""
    name = Path(urllib.parse.urlsplit(url).path).name or "download"
    target = folder / name
    shown = display_url(url)
    logger.info("Downloading %s", shown)
    partial = folder / f".{name}.{uuid.uuid4().hex}.part"
    try:
        with requests.get(
            url, stream=True, timeout=DOWNLOAD_TIMEOUT_SECONDS
        ) as response:
            if response.status_code >= 400:
                raise IngestError(
                    f"Download of {shown} failed: HTTP {response.status_code} "
                    f"{response.reason}. Check that the URL is right and publicly "
                    "readable, or download the file and pass its local path as "
                    "raw_data."
                )
            with open(partial, "wb") as handle:
                handle.writelines(response.iter_content(DOWNLOAD_CHUNK_BYTES))
            os.replace(partial, target)
    except requests.RequestException as exc:
        # The exception's text repeats the URL, query string included.
        raise IngestError(
            f"Download of {shown} failed: {type(exc).__name__}. Check the network "
            "connection and the URL, or download the file and pass its local path "
            "as raw_data."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    logger.info("Downloaded %d bytes to %s", target.stat().st_size, target)
    return target


def resolve_source_file(path: Path) -> Path:
    """Return the data file at ``path``, or the single data file in a folder."""
    if not path.exists():
        raise IngestError(
            f"Input file {path} does not exist. Pass the path of a parquet or CSV "
            "file, or an http(s) URL."
        )
    if path.is_file():
        return path
    candidates = sorted(
        child
        for child in path.iterdir()
        if child.is_file()
        and child.name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)
    )
    if len(candidates) != 1:
        found = ", ".join(child.name for child in candidates) or "none"
        raise IngestError(
            f"Input folder {path} must contain exactly one parquet or CSV file; "
            f"found {found}. Pass the path of the file itself."
        )
    return candidates[0]


def detect_format(path: Path) -> str:
    """Return "parquet" or "csv" from the file's first bytes and its name."""
    with open(path, "rb") as handle:
        head = handle.read(len(PARQUET_MAGIC))
    if head == PARQUET_MAGIC or path.name.lower().endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "csv"


def read_table(path: Path) -> pd.DataFrame:
    """Read a parquet or CSV file, with a clear error for a damaged file."""
    file_format = detect_format(path)
    if file_format == "parquet":
        try:
            return pd.read_parquet(path)
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(
                f"{path} is not a readable parquet file: {exc}; re-export it or "
                "ingest the CSV"
            ) from exc
    try:
        # pandas 2's default float parser can change the last bit of a value;
        # round_trip reads every float exactly as written.
        return pd.read_csv(path, float_precision="round_trip")
    except pd.errors.EmptyDataError as exc:
        raise IngestError(
            f"{path} is empty: it has no header row and no data. Export the data "
            "again with a header row naming the columns."
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise IngestError(
            f"{path} is not a readable CSV file: {exc}. Export it as comma-separated "
            "UTF-8 text with one header row, or as parquet."
        ) from exc


def parse_timestamps(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return ``df`` with ``column`` parsed as UTC timestamps."""
    if column not in df.columns:
        raise IngestError(
            f"Timestamp column {column!r} not found; the file has columns "
            f"{list(map(str, df.columns))}. Set timestamp_column to the name of "
            "the time column."
        )
    values = df[column]
    if pd.api.types.is_numeric_dtype(values.dtype):
        # pandas would read the numbers as nanoseconds since 1970, so epoch
        # seconds or milliseconds would silently become dates in January 1970.
        raise IngestError(
            f"Timestamp column {column!r} contains numbers ({values.dtype}), such as "
            f"{values.iloc[0]}, whose unit (seconds or milliseconds since 1970) "
            "cannot be told. Export the timestamps as ISO 8601 text, such as "
            "2019-02-08T07:36:36.443Z, or as a parquet timestamp column."
        )
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        logger.info("Column %r has no time zone; taking it as UTC", column)
        parsed = values.dt.tz_localize("UTC")
    else:
        parsed = pd.to_datetime(values, utc=True, errors="coerce")
        unparsed = parsed.isna() & values.notna()
        if unparsed.any():
            row = unparsed.to_numpy().nonzero()[0][0]
            first = values.dropna().iloc[0]
            raise IngestError(
                f"Timestamp column {column!r} has {int(unparsed.sum())} value(s) that "
                f"are not dates, the first at row {row}: {values.iloc[row]!r}. "
                f"Every value is read in the format of the first one, {first!r}. "
                "Write all timestamps in one format, preferably ISO 8601 such as "
                "2019-02-08T07:36:36.443Z, remove the rows that are not dates, or "
                "set timestamp_column to the time column."
            )
    out = df.copy()
    out[column] = parsed
    return out


def write_parquet_atomic(df: pd.DataFrame, folder: Path) -> Path:
    """Write ``df`` to ``folder/data.parquet`` through a temporary file."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / OUTPUT_FILE
    partial = folder / f".{OUTPUT_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        df.to_parquet(partial, index=False)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def ingest(source: str, output_dir: Path, timestamp_column: str = "DateTime") -> Path:
    """Read ``source`` (a path or an http(s) URL) and write ``output_dir/data.parquet``."""
    with tempfile.TemporaryDirectory(prefix="ingest-") as scratch:
        if is_url(source):
            path = download(source, Path(scratch))
        else:
            path = resolve_source_file(Path(source))
        df = read_table(path)
        logger.info(
            "Read %d rows and %d columns (%s) from %s",
            len(df),
            len(df.columns),
            ", ".join(map(str, df.columns)),
            path.name,
        )
    df = parse_timestamps(df, timestamp_column)
    target = write_parquet_atomic(df, output_dir)
    logger.info("Wrote %d rows to %s", len(df), target)
    return target


def choose_source(raw_data: str | None, source_url: str | None) -> str:
    if raw_data and source_url:
        raise IngestError(
            f"Both raw_data ({display_url(raw_data)}) and source_url "
            f"({display_url(source_url)}) are set. Set only one of them."
        )
    if source_url:
        if not is_url(source_url):
            raise IngestError(
                f"source_url {display_url(source_url)!r} is not an http or https "
                "URL. Pass a URL "
                "such as https://host/path/file.parquet, or use raw_data for a file."
            )
        return source_url
    if raw_data:
        return raw_data
    raise IngestError(
        "No input given. Set raw_data to a parquet or CSV file, or source_url to "
        "an http(s) URL of one."
    )


def joined(value: str | list[str]) -> str:
    """Rejoin a value that the command line split at spaces (Azure ML does not quote)."""
    return " ".join(value) if isinstance(value, list) else value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-data", help="parquet or CSV file (or a folder with one)")
    parser.add_argument("--source-url", help="http(s) URL of a parquet or CSV file")
    parser.add_argument(
        "--timestamp-column", nargs="+", default="DateTime", help="time column"
    )
    parser.add_argument("--data", required=True, help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
        source = choose_source(args.raw_data, args.source_url)
        ingest(source, Path(args.data), joined(args.timestamp_column))
    except IngestError as exc:
        print(f"Ingest failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
