"""Breaking the delivery step: odd device ids, endless timeouts, cancels, lost sends.

A bad value must stop the step with an error that names it; a cancelled step
must leave no copy of the package in TMPDIR.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import mlflow
import pytest

from plant2edge import settings
from plant2edge.localstack import start_stack
from plant2edge.localstack.processes import free_port, wait_until

COMPONENT_DIR = settings.repo_root() / "components" / "deliver_package"
if str(COMPONENT_DIR) not in sys.path:
    sys.path.insert(0, str(COMPONENT_DIR))

from deliver_package import DeliveryError, DeliveryRequest
from delivery_breakage_support import PACKAGE_NAME, register_fake_package


def request(**overrides) -> DeliveryRequest:
    values = {
        "package_name": PACKAGE_NAME,
        "device_id": "amm-1",
        "project_id": "line-7",
        "transport": "mqtt",
    }
    values.update(overrides)
    return DeliveryRequest(**values)


@pytest.mark.parametrize("seconds", [1e300, float("inf"), 86400.5])
def test_delivery_rejects_endless_timeout(seconds):
    with pytest.raises(DeliveryError, match=r"timeout_seconds .* 86400"):
        request(timeout_seconds=seconds).validate()


def test_delivery_accepts_one_day_timeout():
    request(timeout_seconds=86400).validate()


@pytest.fixture(scope="module")
def cloud_stack(tmp_path_factory):
    """Mosquitto on a free port and Azurite, with no device, so no message comes back."""
    stack = start_stack(tmp_path_factory.mktemp("stack"), mqtt_port=free_port())
    yield stack
    stack.stop()


def test_delivery_sigterm_leaves_no_package_copy(p2e_home, cloud_stack, tmp_path):
    uri = register_fake_package(p2e_home)
    temp = tmp_path / "tmp"
    temp.mkdir()
    log = tmp_path / "step.log"
    env = {
        **os.environ,
        "TMPDIR": str(temp),
        "MLFLOW_TRACKING_URI": uri,
        "PLANT2EDGE_LOCALSTACK_DIR": str(cloud_stack.state_dir),
    }
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "PLANT2EDGE_KEY_VAULT_URL"):
        env.pop(name, None)
    argv = [sys.executable, str(COMPONENT_DIR / "deliver_package.py")]
    argv += ["--package-name", PACKAGE_NAME, "--device-id", "amm-nobody"]
    argv += ["--project-id", "line-7", "--require-approval", "False"]
    argv += ["--transport", "mqtt", "--timeout-seconds", "60"]
    argv += ["--delivery-report", str(tmp_path / "report")]
    with open(log, "wb") as output:
        process = subprocess.Popen(argv, env=env, stderr=output, stdout=output)
    try:
        assert wait_until(lambda: b"sending newDelivery" in log.read_bytes(), 60)
        assert [p.name.startswith("deliver-package-") for p in temp.iterdir()] == [True]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode != 0
    assert list(temp.iterdir()) == []
    tags = mlflow.MlflowClient(uri).get_model_version(PACKAGE_NAME, "1").tags
    assert not any(key.startswith("deliver") for key in tags)


LOOPBACK_HUB = (
    "HostName=127.0.0.1;SharedAccessKeyName=service;"
    "SharedAccessKey=c2VydmljZS1rZXktZm9yLWEtdGVzdC1vbmx5LTEyMzQ1Ng=="
)
LOOPBACK_EVENTS = (
    "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=service;"
    "SharedAccessKey=ZXZlbnRzLWtleS1mb3ItYS10ZXN0LW9ubHk=;EntityPath=hub"
)


def test_iothub_retry_opens_new_connection():
    from delivery_protocol import C2DMessage, TransientSendError
    from delivery_transports import IoTHubTransport

    transport = IoTHubTransport(LOOPBACK_HUB, LOOPBACK_EVENTS)
    message = C2DMessage({"type": "event"}, b"{}")
    errors = []
    for _ in range(2):
        with pytest.raises(TransientSendError) as raised:
            transport.send_c2d("amm-1", message)
        errors.append(str(raised.value))
    transport.close()

    assert "AMQPConnectionError" in errors[0]
    assert "AMQPConnectionError" in errors[1]
    assert "consumed" not in errors[1]


@pytest.mark.parametrize(
    ("device_id", "error"),
    [
        ("amm 1", "device_id 'amm 1' is invalid"),
        ("line(7)*", "Edge package 'state-identifier_edge' is not registered"),
    ],
    ids=["space", "shell-characters"],
)
def test_delivery_pipeline_passes_device_id_whole(p2e_home, device_id, error):
    from plant2edge.runner import run_pipeline

    pipeline = settings.repo_root() / "pipelines" / "delivery.yaml"
    overrides = {"inputs.device_id": device_id, "inputs.transport": "mqtt"}

    result = run_pipeline(pipeline, overrides, stream_logs=False)

    assert result.status == "Failed"
    stderr = (result.steps["deliver"].log_dir / "stderr.txt").read_text()
    assert error in stderr
    assert "unrecognized arguments" not in stderr
