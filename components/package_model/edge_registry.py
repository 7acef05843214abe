"""Read earlier edge packages of a model from the MLflow model registry.

Edge packages are registered as ``<model>_edge``. Each version's source is a
folder that contains one edge package zip, its ``.zip.sha256`` and
``package.json``, and each version has the tag ``package_id``.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)


def edge_model_name(model_name: str) -> str:
    return f"{model_name}_edge"


def edge_versions(client: MlflowClient, edge_name: str) -> list[ModelVersion]:
    """Return the registered versions of ``edge_name``, oldest first; [] if none."""
    try:
        client.get_registered_model(edge_name)
    except MlflowException:
        return []
    found = client.search_model_versions(f"name = '{edge_name}'")
    return sorted(found, key=lambda version: int(version.version))


def package_id(client: MlflowClient, edge_name: str) -> uuid.UUID:
    """Return the package id of the latest ``edge_name`` version, or a new one."""
    versions = edge_versions(client, edge_name)
    if not versions:
        new_id = uuid.uuid4()
        logger.info("First package of %s: new package id %s", edge_name, new_id)
        return new_id
    latest = versions[-1]
    value = latest.tags.get("package_id")
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"Registered {edge_name} version {latest.version} has package_id tag "
            f"{value!r}, which is not a UUID. Set the tag to the package id of that "
            "version (see its package.json) and run packaging again."
        ) from exc


def previous_version(
    client: MlflowClient, edge_name: str, below: int
) -> ModelVersion | None:
    """Return the latest ``edge_name`` version numbered below ``below``, if any."""
    earlier = [v for v in edge_versions(client, edge_name) if int(v.version) < below]
    return earlier[-1] if earlier else None


def download_package(version: ModelVersion, dest: Path) -> Path:
    """Download an edge version's source folder; return its edge package zip."""
    uri = f"models:/{version.name}/{version.version}"
    local = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest))
    )
    zips = sorted(local.glob("*.zip"))
    if len(zips) != 1:
        raise ValueError(
            f"{uri} contains {len(zips)} zip files ({[p.name for p in zips]}); an edge "
            "package version must contain exactly one edge package zip."
        )
    return zips[0]
