"""The delivery step against the real local stack: Mosquitto, Azurite and a simulated device."""

from __future__ import annotations

import json
import threading

import pytest
from deliver_package import DeliveryError, DeliveryRequest, deliver
from delivery_helpers import PACKAGE_NAME
from delivery_registry import RegistryError

from plant2edge.approve import main as approve_main


def request_for(device_id: str, **overrides) -> DeliveryRequest:
    values = {
        "package_name": PACKAGE_NAME,
        "device_id": device_id,
        "project_id": "line-7",
        "require_approval": False,
        "timeout_seconds": 30,
    }
    values.update(overrides)
    return DeliveryRequest(**values)


def delivery_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.startswith(("delivered.", "delivery."))}


def test_delivery_succeeds_and_tags_version(
    registry, stack_env, start_device, tmp_path
):
    version = registry.register()
    device = start_device()

    report = deliver(request_for(device.device_id), tmp_path / "report")

    assert report["status"] == "succeeded"
    assert report["final_state"] == "Success"
    assert [s["state"] for s in report["states"]] == [
        "Downloading",
        "Verifying",
        "Deploying",
        "Success",
    ]
    assert report["presigned_url_requests"] == 1
    assert report["ignored_messages"] == 0
    assert (
        report["package"]["sha256"]
        == device.status()["deliveries"][report["delivery_id"]]["sha256"]
    )
    tags = registry.tags(PACKAGE_NAME, version.version)
    assert tags["delivered.dev"] == "1"
    record = json.loads(tags[f"delivery.dev.{device.device_id}"])
    assert record["delivery_id"] == report["delivery_id"]
    assert record["state"] == "Success"
    assert "last_delivery_attempt" not in tags


def test_delivery_writes_json_and_markdown_report(
    registry, stack_env, start_device, tmp_path
):
    registry.register()
    device = start_device()

    report = deliver(request_for(device.device_id), tmp_path / "report")

    written = json.loads((tmp_path / "report" / "report.json").read_text())
    assert written == report
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert f"# Delivery {report['delivery_id']}" in markdown
    assert "| Success |" in markdown
    assert "?" not in report["blob"]["url"]


def test_delivery_device_error_fails_without_tags(
    registry, stack_env, start_device, tmp_path
):
    version = registry.register()
    device = start_device("error")

    with pytest.raises(DeliveryError, match="reported Error .*Simulated failure"):
        deliver(request_for(device.device_id), tmp_path / "report")

    tags = registry.tags(PACKAGE_NAME, version.version)
    assert delivery_tags(tags) == {}
    attempt = json.loads(tags["last_delivery_attempt"])
    assert attempt["state"] == "Error"
    assert attempt["device_id"] == device.device_id
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["status"] == "failed"
    assert report["tags_written"] == ["last_delivery_attempt"]


def test_delivery_device_rejects_package_without_config(
    registry, stack_env, start_device, tmp_path
):
    version = registry.register(config=False)
    device = start_device()

    with pytest.raises(DeliveryError, match="no pipeline_config.yml"):
        deliver(request_for(device.device_id), tmp_path / "report")

    assert delivery_tags(registry.tags(PACKAGE_NAME, version.version)) == {}
    assert device.delivery_state() == "Error"


def test_delivery_silent_device_times_out(registry, stack_env, start_device, tmp_path):
    version = registry.register()
    device = start_device("silent")

    with pytest.raises(
        DeliveryError, match="timed out after 2 s; last state seen: none"
    ) as info:
        deliver(request_for(device.device_id, timeout_seconds=2), tmp_path / "report")

    assert device.device_id in str(info.value)
    assert "sent no presignedUrlRequest after newDelivery" in str(info.value)
    tags = registry.tags(PACKAGE_NAME, version.version)
    assert delivery_tags(tags) == {}
    assert json.loads(tags["last_delivery_attempt"])["state"] == "Timeout"


def test_delivery_ignores_foreign_delivery_id(
    registry, stack_env, start_device, tmp_path
):
    registry.register()
    device = start_device("foreign")

    report = deliver(request_for(device.device_id), tmp_path / "report")

    assert report["final_state"] == "Success"
    # The device first sends a presignedUrlRequest and a Success for another id.
    assert report["ignored_messages"] == 2
    assert report["presigned_url_requests"] == 1


def test_delivery_completes_after_device_reconnects(
    registry, stack_env, start_device, tmp_path
):
    registry.register()
    device = start_device("drop", drop_seconds=1.0)

    report = deliver(request_for(device.device_id), tmp_path / "report")

    assert report["final_state"] == "Success"
    assert "Dropping the connection" in device.log.read_text()


def test_delivery_broker_restart_never_tags_failure(
    registry, stack_env, start_device, local_stack, tmp_path
):
    version = registry.register()
    device = start_device("slow", state_delay=1.5)
    result: dict = {}

    def run() -> None:
        try:
            result["report"] = deliver(
                request_for(device.device_id, timeout_seconds=30), tmp_path / "report"
            )
        except DeliveryError as exc:
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert local_stack_wait(lambda: device.delivery_state() == "Downloading")
    assert local_stack.kill_broker()
    local_stack.start_broker()
    worker.join(timeout=60)

    assert not worker.is_alive()
    tags = registry.tags(PACKAGE_NAME, version.version)
    if "report" in result:
        assert result["report"]["final_state"] == "Success"
        assert tags["delivered.dev"] == "1"
    else:
        assert "timed out" in str(result["error"]) or "failed" in str(result["error"])
        assert delivery_tags(tags) == {}


def local_stack_wait(condition, timeout: float = 20.0) -> bool:
    from plant2edge.localstack.processes import wait_until

    return wait_until(condition, timeout, 0.02)


def test_delivery_rejects_missing_version(registry, stack_env, tmp_path):
    registry.register()
    registry.register()

    with pytest.raises(
        RegistryError, match=r"has no version '7'\. Available versions: 1, 2"
    ):
        deliver(request_for("amm-x", package_version="7"), tmp_path / "report")


def test_delivery_rejects_unregistered_package(registry, stack_env, tmp_path):
    registry.register()

    with pytest.raises(
        RegistryError, match="Registered edge packages: state-identifier_edge"
    ):
        deliver(request_for("amm-x", package_name="pump_edge"), tmp_path / "report")


def test_delivery_rejects_unapproved_package(
    registry, stack_env, start_device, tmp_path
):
    registry.register()
    device = start_device()
    request = request_for(
        device.device_id, environment="production", require_approval=True
    )

    with pytest.raises(
        RegistryError, match="not approved for environment 'production'"
    ) as info:
        deliver(request, tmp_path / "rejected")
    assert (
        "plant2edge approve --name state-identifier_edge --version 1 "
        "--environment production" in str(info.value)
    )
    assert not (tmp_path / "rejected").exists()

    assert (
        approve_main(
            ["--name", PACKAGE_NAME, "--version", "1", "--environment", "production"]
        )
        == 0
    )
    report = deliver(request, tmp_path / "approved")

    assert report["final_state"] == "Success"
    assert registry.tags(PACKAGE_NAME, "1")["delivered.production"] == "1"


def test_delivery_rejects_tampered_package(registry, stack_env, start_device, tmp_path):
    version = registry.register(tamper=True)

    with pytest.raises(
        RegistryError, match="SHA-256 mismatch for state-identifier_edge_1.zip"
    ):
        deliver(request_for("amm-x"), tmp_path / "report")

    assert delivery_tags(registry.tags(PACKAGE_NAME, version.version)) == {}


def test_delivery_latest_picks_highest_version(
    registry, stack_env, start_device, tmp_path
):
    registry.register()
    registry.register()
    device = start_device()

    report = deliver(request_for(device.device_id), tmp_path / "report")

    assert report["package"]["version"] == "2"
    assert "delivered.dev" not in registry.tags(PACKAGE_NAME, "1")
    assert registry.tags(PACKAGE_NAME, "2")["delivered.dev"] == "2"


def test_delivery_skips_upload_of_same_package(
    registry, stack_env, start_device, tmp_path
):
    registry.register()
    device = start_device()

    first = deliver(request_for(device.device_id), tmp_path / "first")
    second = deliver(request_for(device.device_id), tmp_path / "second")

    assert first["blob"]["uploaded"] is True
    assert second["blob"]["uploaded"] is False
    assert second["final_state"] == "Success"
