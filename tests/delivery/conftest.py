"""Fixtures for the delivery tests: the real local stack, devices and fake edge packages.

The stack (Mosquitto on 127.0.0.1:8883 and Azurite on a free port) is started
once for this folder, because azure-iot-device fixes the broker port, and is
stopped by PID at the end. Each test gets its own MLflow registry, device id and
simulated AI Model Manager.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from delivery_helpers import Registry

from plant2edge import settings
from plant2edge.localstack import start_stack


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory) -> Path:
    """Create an MLflow SQLite store once; creating its schema takes seconds."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def registry(p2e_home, monkeypatch, empty_mlflow_db) -> Registry:
    from mlflow import MlflowClient

    shutil.copyfile(empty_mlflow_db, p2e_home / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri())
    client = MlflowClient()
    experiment_id = client.create_experiment(
        "edge-packages",
        artifact_location=str(settings.artifacts_root() / "edge-packages"),
    )
    return Registry(client, p2e_home, experiment_id)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("localstack"))
    yield stack
    stack.stop()


@pytest.fixture
def stack_env(local_stack, monkeypatch):
    """Point the delivery step at the session's local stack."""
    monkeypatch.setenv("PLANT2EDGE_LOCALSTACK_DIR", str(local_stack.state_dir))
    for name in (
        "AZURE_STORAGE_CONNECTION_STRING",
        "PLANT2EDGE_KEY_VAULT_URL",
        "IOTHUB_CONNECTION_STRING",
        "IOTHUB_EVENTHUB_CONNECTION_STRING",
    ):
        monkeypatch.delenv(name, raising=False)
    return local_stack


@pytest.fixture
def start_device(local_stack):
    """Provision a fresh device id and start a simulated AI Model Manager for it."""
    started = []

    def start(mode: str = "normal", **options):
        device_id = f"amm-{uuid.uuid4().hex[:8]}"
        connection = local_stack.provision_device(device_id)
        device = local_stack.start_device(connection, mode=mode, **options)
        started.append(device)
        return device

    yield start
    for device in started:
        device.stop()
