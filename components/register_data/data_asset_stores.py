"""The two stores of data asset versions: a local folder and an Azure ML workspace.

Both stores offer the same operations: find the version whose ``content_sha256``
tag matches, return the next version number, and create a version from a data
file and its summary.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

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
IDENTITY_CLIENT_ID_ENV = "DEFAULT_IDENTITY_CLIENT_ID"
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


def write_payload(folder: Path, data_file: Path, manifest: dict) -> None:
    """Write the payload folder: a copy of the data and its manifest."""
    folder.mkdir(parents=True)
    shutil.copyfile(data_file, folder / DATA_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_asset_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegisterError(
            f"{path} is not valid JSON ({exc}), so the existing versions cannot be "
            "compared with the new data. Restore the file, or delete its version "
            "folder."
        ) from exc


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
                found.append(read_asset_file(child / ASSET_FILE))
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
        try:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._write_error(exc) from exc
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
                    raise self._write_error(exc) from exc
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

    def _write_error(self, exc: OSError) -> RegisterError:
        return RegisterError(
            f"Cannot write the data asset to {self.root}: {exc.strerror} "
            f"({exc.filename}). Set {LOCAL_STORE_ENV} to a writable folder, or "
            "PLANT2EDGE_HOME for the local runner, which sets it."
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
        # this version number first. The workspace then rejects this one and the
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
