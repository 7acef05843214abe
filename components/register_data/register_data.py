"""Register validated time-series data as a versioned data asset.

The asset is a ``uri_folder`` whose payload contains ``data.parquet`` and
``manifest.json`` (name, version, content hash, row count, time range, columns).
Each version is tagged with ``content_sha256``, a hash of the rows' content.
Data whose hash matches an existing version reuses that version instead of
creating a new one.

Where the asset goes:
- ``PLANT2EDGE_DATA_ASSETS`` set (the local runner sets it): the local store
  ``<root>/<name>/<version>/asset.json`` with the payload folder ``data/``.
- ``AZUREML_ARM_SUBSCRIPTION``, ``AZUREML_ARM_RESOURCEGROUP`` and
  ``AZUREML_ARM_WORKSPACE_NAME`` set (an Azure ML job): the workspace, through
  azure-ai-ml's ``MLClient`` with the job's managed identity.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys
import uuid
from pathlib import Path

import pandas as pd
from data_asset_stores import (
    ASSET_FILE,
    DATA_FILE,
    DataSummary,
    RegisterError,
    open_store,
)

logger = logging.getLogger(__name__)

DEFAULT_DESCRIPTION = "Validated plant time series: data.parquet and manifest.json."
# The asset name pattern of the Azure ML REST API (azure-ai-ml 1.35): a letter or
# digit first, then letters, digits, '-', '_' and '.', at most 255 characters,
# not ending with '.'.
ASSET_NAME_PATTERN = re.compile(r"^(?![\-_.])[a-zA-Z0-9\-_.]{1,255}(?<!\.)$")


def check_asset_name(name: str) -> str:
    if not ASSET_NAME_PATTERN.match(name):
        raise RegisterError(
            f"Invalid data asset name {name!r}: Azure ML asset names start with a "
            "letter or digit, contain only letters, digits, '-', '_' and '.', do not "
            "end with '.', and have at most 255 characters. Choose a name such as "
            "'state-identifier-data'."
        )
    return name


def content_sha256(df: pd.DataFrame) -> str:
    """Hash the rows' content, independent of the file that stores them.

    Columns are hashed in name order with their dtype and the values'
    ``pandas.util.hash_pandas_object`` (index excluded). Rewriting the same rows
    with another compression, row grouping or column order keeps the hash.
    Timestamps are converted to nanoseconds in UTC first, so the stored time unit
    does not change it either.
    """
    digest = hashlib.sha256()
    for column in sorted(map(str, df.columns)):
        values = df[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            values = values.astype("datetime64[ns]")
        digest.update(f"{column}\0{values.dtype}\0".encode())
        hashes = pd.util.hash_pandas_object(values, index=False)
        digest.update(hashes.to_numpy().tobytes())
    return digest.hexdigest()


def isoformat_utc(value) -> str:
    return pd.Timestamp(value).tz_convert("UTC").isoformat().replace("+00:00", "Z")


def find_data_file(path: Path) -> Path:
    data_file = path / DATA_FILE if path.is_dir() else path
    if not data_file.is_file():
        raise RegisterError(
            f"{data_file} not found. Pass the validated_data output of the validate "
            "step, a folder with data.parquet."
        )
    return data_file


def summarize(data_file: Path, timestamp_column: str) -> DataSummary:
    df = pd.read_parquet(data_file)
    if timestamp_column not in df.columns:
        raise RegisterError(
            f"Timestamp column {timestamp_column!r} not found in {data_file}; it has "
            f"columns {list(map(str, df.columns))}. Set timestamp_column."
        )
    if len(df) == 0:
        raise RegisterError(f"{data_file} has no rows; there is nothing to register.")
    timestamps = df[timestamp_column]
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        raise RegisterError(
            f"Column {timestamp_column!r} in {data_file} has dtype {timestamps.dtype}, "
            "not UTC timestamps. Pass the output of the validate step."
        )
    return DataSummary(
        content_sha256=content_sha256(df),
        row_count=len(df),
        time_start=isoformat_utc(timestamps.min()),
        time_end=isoformat_utc(timestamps.max()),
        columns=list(map(str, df.columns)),
    )


def register(
    data: Path,
    name: str,
    store,
    description: str = DEFAULT_DESCRIPTION,
    timestamp_column: str = "DateTime",
) -> dict:
    """Register ``data`` as a version of ``name``, reusing a version with equal content."""
    check_asset_name(name)
    data_file = find_data_file(data)
    summary = summarize(data_file, timestamp_column)
    logger.info(
        "Data has %d rows from %s to %s, content_sha256 %s",
        summary.row_count,
        summary.time_start,
        summary.time_end,
        summary.content_sha256,
    )
    existing = store.find_by_hash(name, summary.content_sha256)
    if existing is not None:
        logger.info(
            "Version %s of %s in %s has the same content; reusing it",
            existing["version"],
            name,
            store,
        )
        return asset_info(existing, created=False)
    asset, created = store.create(name, data_file, summary, description)
    if created:
        logger.info("Registered %s version %s in %s", name, asset["version"], store)
    return asset_info(asset, created=created)


def asset_info(asset: dict, created: bool) -> dict:
    return {
        "name": asset["name"],
        "version": str(asset["version"]),
        "asset_id": f"azureml:{asset['name']}:{asset['version']}",
        "created": created,
        "tags": dict(asset.get("tags") or {}),
    }


def write_asset_info(info: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ASSET_FILE
    partial = folder / f".{ASSET_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        partial.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def joined(value: str | list[str]) -> str:
    """Rejoin a value that the command line split at spaces (Azure ML does not quote)."""
    return " ".join(value) if isinstance(value, list) else value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with data.parquet")
    parser.add_argument("--asset-name", default="state-identifier-data")
    parser.add_argument("--description", nargs="+", default=DEFAULT_DESCRIPTION)
    parser.add_argument("--timestamp-column", nargs="+", default="DateTime")
    parser.add_argument("--asset-info", required=True, help="output folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
        check_asset_name(args.asset_name)
        store = open_store()
        info = register(
            Path(args.data),
            args.asset_name,
            store,
            joined(args.description),
            joined(args.timestamp_column),
        )
    except RegisterError as exc:
        print(f"Registration failed: {exc}", file=sys.stderr)
        return 1
    target = write_asset_info(info, Path(args.asset_info))
    logger.info("Wrote %s", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
