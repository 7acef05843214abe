"""Helpers for the delivery tests: fake edge packages, a registry, secret scanning."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from plant2edge import settings

COMPONENT_DIR = settings.repo_root() / "components" / "deliver_package"
if str(COMPONENT_DIR) not in sys.path:
    sys.path.insert(0, str(COMPONENT_DIR))

PACKAGE_NAME = "state-identifier_edge"
PIPELINE_CONFIG = """\
fileFormatVersion: 1.0.0
dataFlowPipelineInfo:
  projectName: state-identifier
  dataFlowPipelineVersion: "{version}"
  packageId: {package_id}
dataFlowPipeline:
  components: []
"""


def build_edge_zip(
    path: Path,
    version: str,
    package_id: str,
    *,
    payload_bytes: int = 0,
    config: bool = True,
) -> Path:
    """Write a small stand-in for an edge package: a zip with pipeline_config.yml.

    ``payload_bytes`` adds an incompressible member, to measure large transfers.
    """
    with zipfile.ZipFile(path, "w") as archive:
        if config:
            archive.writestr(
                "pipeline_config.yml",
                PIPELINE_CONFIG.format(version=version, package_id=package_id),
            )
        archive.writestr("README.md", "Fake edge package for the delivery tests.\n")
        if payload_bytes:
            archive.writestr(
                "payload.bin",
                os.urandom(payload_bytes),
                compress_type=zipfile.ZIP_STORED,
            )
    return path


@dataclass
class Registry:
    """An MLflow model registry in a temporary PLANT2EDGE_HOME."""

    client: object
    home: Path
    experiment_id: str

    def register(
        self,
        name: str = PACKAGE_NAME,
        *,
        payload_bytes: int = 0,
        config: bool = True,
        tamper: bool = False,
    ):
        """Register a fake edge package version following the edge package contract."""
        import mlflow

        versions = self.client.search_model_versions(f"name='{name}'")
        version = str(len(versions) + 1)
        package_id = str(uuid.uuid4())
        folder = self.home / "build" / name / version
        folder.mkdir(parents=True)
        zip_path = build_edge_zip(
            folder / f"{name}_{version}.zip",
            version,
            package_id,
            payload_bytes=payload_bytes,
            config=config,
        )
        digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
        (folder / f"{zip_path.name}.sha256").write_text(f"{digest}  {zip_path.name}\n")
        if tamper:
            with zipfile.ZipFile(zip_path, "a") as archive:
                archive.writestr("extra.txt", "changed after hashing")
        info = {
            "package_id": package_id,
            "package_version": version,
            "model_name": "state-identifier",
            "model_version": version,
            "data_asset": "state-identifier-data:1",
            "validation": "passed",
        }
        (folder / "package.json").write_text(json.dumps(info))
        with mlflow.start_run(experiment_id=self.experiment_id) as run:
            mlflow.log_artifacts(str(folder), "edge_package")
        if not versions:
            self.client.create_registered_model(name)
        tags = {k: str(v) for k, v in info.items() if k != "package_version"}
        return self.client.create_model_version(
            name,
            f"{run.info.artifact_uri}/edge_package",
            run_id=run.info.run_id,
            tags=tags,
        )

    def tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client.get_model_version(name, version).tags)


def secrets_of(stack) -> list[str]:
    """Return the strings that must never appear in a log, report or output."""
    return [
        stack.blob.account_key,
        stack.blob.connection_string,
        "AccountKey=",
        "sig=",
        "PRIVATE KEY-----",
    ]


def files_containing(paths: list[Path], needles: list[str]) -> list[tuple[Path, str]]:
    """Return (file, needle) for each file in ``paths`` (files or folders) holding a needle."""
    files = []
    for path in paths:
        files += (
            sorted(p for p in path.rglob("*") if p.is_file())
            if path.is_dir()
            else [path]
        )
    hits = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        hits += [(file, needle) for needle in needles if needle in text]
    return hits
