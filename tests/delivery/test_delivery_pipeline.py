"""pipelines/delivery.yaml through the local runner, the step's CLI, and secret hygiene."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from deliver_package import DeliveryError, DeliveryRequest, deliver, main
from delivery_helpers import PACKAGE_NAME, files_containing, secrets_of

from plant2edge import settings
from plant2edge.localstack.processes import wait_until
from plant2edge.runner import run_pipeline

PIPELINE = settings.repo_root() / "pipelines" / "delivery.yaml"


def pipeline_overrides(device_id: str, **extra) -> dict[str, str]:
    overrides = {
        "inputs.device_id": device_id,
        "inputs.transport": "mqtt",
        "inputs.require_approval": "false",
        "inputs.timeout_seconds": "30",
    }
    overrides.update({f"inputs.{k}": v for k, v in extra.items()})
    return overrides


def test_delivery_pipeline_runs_locally(registry, stack_env, start_device):
    registry.register()
    device = start_device()

    result = run_pipeline(
        PIPELINE, pipeline_overrides(device.device_id), stream_logs=False
    )

    assert result.succeeded, result.error
    report_dir = result.outputs["delivery_report"]
    report = json.loads((report_dir / "report.json").read_text())
    assert report["final_state"] == "Success"
    assert report["device_id"] == device.device_id
    assert (report_dir / "report.md").is_file()
    assert registry.tags(PACKAGE_NAME, "1")["delivered.dev"] == "1"
    needles = secrets_of(stack_env)
    scanned = [result.run_dir, device.log, device.folder / "status.json"]
    assert files_containing(scanned, needles) == []


def test_delivery_leaves_no_secret_in_logs_or_reports(
    registry, stack_env, start_device, tmp_path, capfd, caplog
):
    caplog.set_level(logging.DEBUG)
    registry.register()
    device = start_device()
    failing = start_device("error")

    deliver(request_for(device.device_id), tmp_path / "ok")
    with pytest.raises(DeliveryError, match="reported Error"):
        deliver(request_for(failing.device_id), tmp_path / "failed")

    needles = secrets_of(stack_env)
    scanned = [
        tmp_path / "ok",
        tmp_path / "failed",
        device.log,
        failing.log,
        stack_env.broker_files.log,
        stack_env.azurite_files.log,
    ]
    assert files_containing(scanned, needles) == []
    captured = capfd.readouterr()
    for needle in needles:
        assert needle not in caplog.text
        assert needle not in captured.out
        assert needle not in captured.err
    tags = json.dumps(registry.tags(PACKAGE_NAME, "1"))
    assert all(needle not in tags for needle in needles)


def request_for(device_id: str) -> DeliveryRequest:
    return DeliveryRequest(
        PACKAGE_NAME, device_id, "p", require_approval=False, timeout_seconds=30
    )


def test_step_main_rejects_unapproved_package(registry, stack_env, tmp_path, caplog):
    registry.register()

    code = main(
        [
            "--package-name",
            PACKAGE_NAME,
            "--environment",
            "production",
            "--require-approval",
            "True",
            "--device-id",
            "amm-x",
            "--project-id",
            "p",
            "--delivery-report",
            str(tmp_path / "report"),
        ]
    )

    assert code == 1
    err = caplog.text
    assert "not approved for environment 'production'" in err
    assert (
        "plant2edge approve --name state-identifier_edge --version 1 "
        "--environment production" in err
    )


def test_step_main_rejects_invalid_boolean(tmp_path, capfd):
    with pytest.raises(SystemExit):
        main(
            [
                "--package-name",
                PACKAGE_NAME,
                "--require-approval",
                "maybe",
                "--device-id",
                "amm-x",
                "--project-id",
                "p",
                "--delivery-report",
                str(tmp_path),
            ]
        )

    assert "'maybe' is not a boolean: use True or False" in capfd.readouterr().err


def test_mqtt_transport_needs_local_stack(registry, tmp_path, monkeypatch):
    registry.register()
    monkeypatch.setenv("PLANT2EDGE_LOCALSTACK_DIR", str(tmp_path / "no-stack"))
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/a;",
    )

    from delivery_credentials import CredentialError

    with pytest.raises(CredentialError, match="transport 'mqtt' needs the local stack"):
        deliver(
            DeliveryRequest(PACKAGE_NAME, "amm-x", "p", require_approval=False),
            tmp_path / "report",
        )


def test_delivery_fails_clearly_when_broker_stays_down(
    registry, stack_env, start_device, local_stack, tmp_path
):
    version = registry.register()
    device = start_device("slow", state_delay=1.0)
    errors: list[Exception] = []
    request = DeliveryRequest(
        PACKAGE_NAME, device.device_id, "p", require_approval=False, timeout_seconds=4
    )

    def run() -> None:
        try:
            deliver(request, tmp_path / "report")
        except DeliveryError as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert wait_until(lambda: device.delivery_state() == "Downloading", 20)
        assert local_stack.kill_broker()
        worker.join(timeout=30)
    finally:
        local_stack.start_broker()

    assert not worker.is_alive()
    (error,) = errors
    assert f"to device {device.device_id} timed out after 4 s" in str(error)
    assert "last state seen: Downloading" in str(error)
    tags = registry.tags(PACKAGE_NAME, version.version)
    assert "delivered.dev" not in tags
    assert json.loads(tags["last_delivery_attempt"])["state"] == "Timeout"
