"""Breaking the local stack: broker restarts, odd device ids, recycled PIDs, bad state.

The simulated AI Model Manager must outlive a broker restart, no device may
live outside ``devices/``, and ``stack stop`` must never signal a process
that is not this stack's own.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from delivery_breakage_support import PACKAGE_NAME, register_fake_package

from plant2edge import settings
from plant2edge.connect import ConnectError, provision_local_device
from plant2edge.localstack import (
    BlobEndpoint,
    MqttEndpoint,
    Stack,
    StackError,
    azurite,
    broker,
    start_stack,
)
from plant2edge.localstack import cli as stack_cli
from plant2edge.localstack.processes import free_port, wait_until

COMPONENT_DIR = settings.repo_root() / "components" / "deliver_package"
if str(COMPONENT_DIR) not in sys.path:
    sys.path.insert(0, str(COMPONENT_DIR))

from deliver_package import DeliveryError, DeliveryRequest, deliver

BROKER_DOWN_SECONDS = 2.0


@pytest.fixture(scope="module")
def device_stack(tmp_path_factory):
    """Mosquitto on 127.0.0.1:8883, where azure-iot-device connects, and Azurite."""
    stack = start_stack(tmp_path_factory.mktemp("stack"))
    yield stack
    stack.stop()


def test_device_outlives_broker_restart(p2e_home, device_stack, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", register_fake_package(p2e_home))
    monkeypatch.setenv("PLANT2EDGE_LOCALSTACK_DIR", str(device_stack.state_dir))
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    connection = device_stack.provision_device("amm-restart")
    device = device_stack.start_device(connection, mode="slow", state_delay=0.5)
    request = DeliveryRequest(
        package_name=PACKAGE_NAME,
        device_id="amm-restart",
        project_id="line-7",
        require_approval=False,
        timeout_seconds=30,
    )
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["report"] = deliver(request, p2e_home / "report")
        except DeliveryError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert wait_until(lambda: device.delivery_state() == "Downloading", 30)
        assert device_stack.kill_broker()
        # The device tries to report Verifying while the broker is down.
        time.sleep(BROKER_DOWN_SECONDS)
        device_stack.start_broker()
        worker.join(timeout=60)
        assert wait_until(lambda: device.delivery_state() in ("Success", "Error"), 30)
        running = device.is_running()
    finally:
        worker.join(timeout=60)
        device.stop()

    assert running
    assert device.delivery_state() == "Success"
    assert outcome.get("error") is None
    assert outcome["report"]["final_state"] == "Success"


@pytest.mark.parametrize("device_id", [".", ".."])
def test_provision_rejects_folder_device_id(tmp_path, device_id):
    out = tmp_path / "connection.json"

    with pytest.raises(ConnectError, match=rf"Device id '{re.escape(device_id)}'"):
        provision_local_device(device_id, out, state_dir=tmp_path / "state")

    assert not out.exists()
    assert list((tmp_path / "state").rglob("registration.json")) == []


@pytest.mark.parametrize("device_id", [".", ".."])
def test_start_device_rejects_folder_device_id(tmp_path, device_id):
    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps({"client_id": device_id}))
    stack = Stack(
        tmp_path / "state",
        MqttEndpoint("127.0.0.1", 8883, Path(), Path(), Path(), ""),
        BlobEndpoint("", "", "", 0),
    )

    with pytest.raises(
        StackError, match=rf"device id '{re.escape(device_id)}', which names a folder"
    ):
        stack.start_device(connection)

    assert list((tmp_path / "state").rglob("device.pid")) == []


@pytest.fixture
def decoys():
    """Start stand-ins for another stack's servers; stop them by PID afterwards."""
    started = []

    def start(args: list[str], cwd: Path) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
        process = subprocess.Popen(sleeper + args, cwd=cwd)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.mark.parametrize("port_file", [True, False], ids=["port-file", "no-port-file"])
def test_stop_spares_other_stacks_azurite(tmp_path, decoys, port_file, caplog):
    files = azurite.AzuriteFiles(tmp_path / "mine" / "azurite")
    files.folder.mkdir(parents=True)
    args = ["azurite-blob", "--blobHost", "127.0.0.1", "--blobPort", "38113"]
    other = decoys(args + ["--inMemoryPersistence"], tmp_path / "other" / "azurite")
    if port_file:
        files.port.write_text("38113\n")
    files.pid.write_text(f"{other.pid}\n")

    assert not azurite.running(files)
    assert not azurite.stop(files)
    assert other.poll() is None
    assert f"Left pid {other.pid} from {files.pid} running" in caplog.text


def test_stop_spares_mosquitto_of_nested_state_dir(tmp_path, decoys):
    files = broker.BrokerFiles(tmp_path / "state" / "broker")
    files.folder.mkdir(parents=True)
    nested_config = f"{tmp_path}/other{files.config}"
    other = decoys(["-c", nested_config], tmp_path / "other")
    files.pid.write_text(f"{other.pid}\n")

    assert not broker.running(files)
    assert not broker.stop(files)
    assert other.poll() is None


@pytest.mark.parametrize("content", ['{"mqtt": ', "{}"], ids=["truncated", "empty"])
def test_stop_with_damaged_stack_file(tmp_path, content, capsys):
    state = tmp_path / "state"
    stack = start_stack(state, mqtt_port=free_port())
    try:
        stack.stack_file.write_text(content)

        code = stack_cli.main(["--state-dir", str(state), "stop"])
        stopped = capsys.readouterr().out
    finally:
        stack.stop()

    assert code == 0
    assert "azurite" in stopped
    assert "mosquitto" in stopped
    assert not broker.running(stack.broker_files)
    assert not azurite.running(stack.azurite_files)


def test_status_with_damaged_stack_file(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text('{"mqtt": ')

    code = stack_cli.main(["--state-dir", str(state), "status"])

    assert code == 1
    error = capsys.readouterr().err
    assert "stack.json" in error
    assert "plant2edge stack stop" in error
