"""Register validated time-series data as a versioned data asset.

The asset is a ``uri_folder`` whose payload holds ``data.parquet`` and
``manifest.json`` (name, version, content hash, row count, time range, columns).
Each version is tagged with ``content_sha256``, a hash of the rows' content; data
whose hash matches an existing version reuses that version instead of creating
a new one.

Where the asset goes:
- ``PLANT2EDGE_DATA_ASSETS`` set (the local runner sets it): the local store
  ``<root>/<name>/<version>/asset.json`` with the payload folder ``data/``.
- ``AZUREML_ARM_SUBSCRIPTION``, ``AZUREML_ARM_RESOURCEGROUP`` and
  ``AZUREML_ARM_WORKSPACE_NAME`` set (an Azure ML job): the workspace, through
  azure-ai-ml's ``MLClient`` with the job's managed identity.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
ASSET_FILE = "asset.json"
PAYLOAD_FOLDER = "data"
LOCAL_STORE_ENV = "PLANT2EDGE_DATA_ASSETS"
AZUREML_ENVS = (
    "AZUREML_ARM_SUBSCRIPTION",
    "AZUREML_ARM_RESOURCEGROUP",
    "AZUREML_ARM_WORKSPACE_NAME",
)
DEFAULT_DESCRIPTION = "Validated plant time series: data.parquet and manifest.json."
IDENTITY_CLIENT_ID_ENV = "DEFAULT_IDENTITY_CLIENT_ID"
# The asset name pattern of the Azure ML REST API (azure-ai-ml 1.35): a letter or
# digit first, then letters, digits, '-', '_' and '.', at most 255 characters,
# not ending with '.'.
ASSET_NAME_PATTERN = re.compile(r"^(?![\-_.])[a-zA-Z0-9\-_.]{1,255}(?<!\.)$")
# Attempts to claim a version number in the local store when another process
# registers the same asset at the same time.
MAX_VERSION_ATTEMPTS = 10


class RegisterError(Exception):
    """Input or configuration that prevents registration; names the fix."""


@dataclass
class DataSummary:
    content_sha256: str
    row_count: int
    time_start: str
    time_end: str
    columns: list[str]

    def tags(self) -> dict[str, str]:
        return {
            "content_sha256": self.content_sha256,
            "row_count": str(self.row_count),
            "time_start": self.time_start,
            "time_end": self.time_end,
        }

    def manifest(self, name: str, version: str) -> dict:
        return {
            "name": name,
            "version": version,
            "content_sha256": self.content_sha256,
            "row_count": self.row_count,
            "time_start": self.time_start,
            "time_end": self.time_end,
            "columns": self.columns,
        }


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
    ``pandas.util.hash_pandas_object`` (index excluded), so rewriting the same
    rows with another compression, row grouping or column order keeps the hash;
    timestamps are converted to nanoseconds in UTC first, so the stored time unit
    does not matter either.
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


def write_payload(folder: Path, data_file: Path, manifest: dict) -> None:
    """Write the payload folder: a copy of the data and its manifest."""
    folder.mkdir(parents=True)
    shutil.copyfile(data_file, folder / DATA_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class LocalAssetStore:
    """The local versioned data asset store that the local runner reads from."""

    def __init__(self, root: Path):
        self.root = root

    def __str__(self) -> str:
        return f"local store {self.root}"

    def versions(self, name: str) -> list[dict]:
        """Return the asset.json of every version of ``name``, oldest first."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = []
        for child in folder.iterdir():
            if child.name.isdigit() and (child / ASSET_FILE).is_file():
                found.append(json.loads((child / ASSET_FILE).read_text()))
        return sorted(found, key=lambda asset: int(asset["version"]))

    def find_by_hash(self, name: str, sha256: str) -> dict | None:
        for asset in self.versions(name):
            if asset.get("tags", {}).get("content_sha256") == sha256:
                return asset
        return None

    def next_version(self, name: str) -> str:
        folder = self.root / name
        numbers = []
        if folder.is_dir():
            numbers = [
                int(child.name) for child in folder.iterdir() if child.name.isdigit()
            ]
        return str(max(numbers, default=0) + 1)

    def create(
        self, name: str, data_file: Path, summary: DataSummary, description: str
    ) -> tuple[dict, bool]:
        """Write a new version into a temporary folder and rename it into place.

        Returns the version's asset.json and whether it was created; when another
        process registered the same content meanwhile, that version is returned.
        """
        (self.root / name).mkdir(parents=True, exist_ok=True)
        for _ in range(MAX_VERSION_ATTEMPTS):
            version = self.next_version(name)
            staging = self.root / name / f".tmp-{uuid.uuid4().hex}"
            asset = {
                "name": name,
                "version": version,
                "type": "uri_folder",
                "path": PAYLOAD_FOLDER,
                "description": description,
                "tags": summary.tags(),
                "created_at": utc_now(),
            }
            try:
                write_payload(
                    staging / PAYLOAD_FOLDER, data_file, summary.manifest(name, version)
                )
                (staging / ASSET_FILE).write_text(json.dumps(asset, indent=2) + "\n")
                # rename() fails when the version folder exists, so two writers
                # never share a version number.
                os.rename(staging, self.root / name / version)
                return asset, True
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                logger.info(
                    "Version %s of %s was taken meanwhile; retrying", version, name
                )
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            existing = self.find_by_hash(name, summary.content_sha256)
            if existing is not None:
                return existing, False
        raise RegisterError(
            f"Could not claim a new version of {name!r} in {self.root} after "
            f"{MAX_VERSION_ATTEMPTS} attempts because other registrations kept "
            "taking the next number. Run the step again."
        )


class AzureMLAssetStore:
    """Data assets of an Azure ML workspace, through azure-ai-ml's MLClient."""

    def __init__(self, ml_client):
        self.ml_client = ml_client

    def __str__(self) -> str:
        return f"Azure ML workspace {self.ml_client.workspace_name}"

    def versions(self, name: str) -> list:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return list(self.ml_client.data.list(name=name))
        except ResourceNotFoundError:
            return []

    def find_by_hash(self, name: str, sha256: str) -> dict | None:
        for data in self.versions(name):
            if (data.tags or {}).get("content_sha256") == sha256:
                return {
                    "name": data.name,
                    "version": str(data.version),
                    "tags": data.tags,
                }
        return None

    def next_version(self, name: str) -> str:
        numbers = [
            int(d.version) for d in self.versions(name) if str(d.version).isdigit()
        ]
        return str(max(numbers, default=0) + 1)

    def create(
        self, name: str, data_file: Path, summary: DataSummary, description: str
    ) -> tuple[dict, bool]:
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Data

        # NOTE: a registration of the same name running at the same moment can take
        # this version number first; the workspace then rejects this one, and the
        # step fails instead of retrying.
        version = self.next_version(name)
        with tempfile.TemporaryDirectory(prefix="register-data-") as scratch:
            payload = Path(scratch) / PAYLOAD_FOLDER
            write_payload(payload, data_file, summary.manifest(name, version))
            data = Data(
                name=name,
                version=version,
                type=AssetTypes.URI_FOLDER,
                path=str(payload),
                description=description,
                tags=summary.tags(),
            )
            created = self.ml_client.data.create_or_update(data)
        asset = {
            "name": created.name,
            "version": str(created.version),
            "tags": dict(created.tags or {}),
        }
        return asset, True


def azure_credential():
    """Return the job's managed identity, or DefaultAzureCredential's chain."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    client_id = os.environ.get(IDENTITY_CLIENT_ID_ENV)
    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


def open_store(environ=os.environ):
    """Choose the local store or the Azure ML workspace from the environment."""
    if environ.get(LOCAL_STORE_ENV):
        return LocalAssetStore(Path(environ[LOCAL_STORE_ENV]))
    if all(environ.get(name) for name in AZUREML_ENVS):
        from azure.ai.ml import MLClient

        ml_client = MLClient(
            azure_credential(),
            subscription_id=environ["AZUREML_ARM_SUBSCRIPTION"],
            resource_group_name=environ["AZUREML_ARM_RESOURCEGROUP"],
            workspace_name=environ["AZUREML_ARM_WORKSPACE_NAME"],
        )
        return AzureMLAssetStore(ml_client)
    raise RegisterError(
        f"No data asset store is configured. Set {LOCAL_STORE_ENV} to a local "
        "folder (the local runner does this), or run the step as an Azure ML job, "
        f"which sets {', '.join(AZUREML_ENVS)}."
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
