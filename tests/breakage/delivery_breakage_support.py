"""A registered stand-in edge package for the delivery breakage tests."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from pathlib import Path

import mlflow

PACKAGE_NAME = "state-identifier_edge"


def register_fake_package(home: Path) -> str:
    """Register version 1 of a small zip that follows the edge package contract."""
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment(
        "breakage", artifact_location=(home / "mlartifacts").as_uri()
    )
    folder = home / "build"
    folder.mkdir()
    zip_path = folder / "state-identifier-edge_1.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("pipeline_config.yml", "dataFlowPipelineInfo: {}\n")
        archive.writestr("payload.bin", os.urandom(1 << 20))
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    (folder / f"{zip_path.name}.sha256").write_text(f"{digest}  {zip_path.name}\n")
    info = {"package_id": str(uuid.uuid4()), "package_version": "1"}
    (folder / "package.json").write_text(json.dumps(info))
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(folder), "edge_package")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(PACKAGE_NAME)
    source = f"{run.info.artifact_uri}/edge_package"
    client.create_model_version(PACKAGE_NAME, source, run_id=run.info.run_id)
    return uri
