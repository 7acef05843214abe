"""plant2edge connect-device: connection files, permissions, and IoT Hub registration."""

from __future__ import annotations

import json
import stat
from unittest import mock

import azure.iot.hub
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from msrest.exceptions import HttpOperationError

from plant2edge.connect import main

HUB = "contoso-hub.azure-devices.net"
SHARED_KEY = "c2VydmljZS1rZXktZm9yLXRlc3RzLW9ubHk="
CONNECTION_STRING = (
    f"HostName={HUB};SharedAccessKeyName=registryReadWrite;SharedAccessKey={SHARED_KEY}"
)
CONNECTION_KEYS = {
    "ca_cert",
    "x509_certificate",
    "x509_private_key",
    "endpoint",
    "topic_prefix",
    "username",
    "client_id",
}


def http_error(status: int) -> HttpOperationError:
    response = requests.Response()
    response.status_code = status
    response.reason = "Not Found" if status == 404 else "Unauthorized"
    return HttpOperationError(None, response)


@pytest.fixture
def registry_manager(monkeypatch):
    """Replace IoTHubRegistryManager; get_device reports 'not found' by default."""
    manager = mock.MagicMock(name="IoTHubRegistryManager()")
    manager.get_device.side_effect = http_error(404)
    manager_class = mock.MagicMock(name="IoTHubRegistryManager")
    manager_class.from_connection_string.return_value = manager
    manager_class.from_token_credential.return_value = manager
    monkeypatch.setattr(azure.iot.hub, "IoTHubRegistryManager", manager_class)
    monkeypatch.setenv("IOTHUB_CONNECTION_STRING", CONNECTION_STRING)
    return manager, manager_class


def certificate_of(document: dict) -> x509.Certificate:
    return x509.load_pem_x509_certificate(document["x509_certificate"].encode())


def thumbprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def test_connect_local_writes_connection_file(p2e_home, tmp_path):
    out = tmp_path / "amm.json"

    assert main(["--device-id", "amm-1", "--out", str(out), "--local"]) == 0

    document = json.loads(out.read_text())
    assert set(document) == CONNECTION_KEYS
    assert document["endpoint"] == "tls://127.0.0.1:8883"
    assert document["topic_prefix"] == "devices/amm-1"
    assert document["username"] == "127.0.0.1/amm-1/?api-version=2021-04-12"
    assert document["client_id"] == "amm-1"
    assert document["x509_private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    ca_path = p2e_home / "localstack" / "ca" / "ca.pem"
    assert document["ca_cert"] == ca_path.read_text()


def test_connect_local_cert_is_signed_by_local_ca(p2e_home, tmp_path):
    out = tmp_path / "amm.json"
    main(["--device-id", "amm-1", "--out", str(out), "--local"])

    document = json.loads(out.read_text())
    cert = certificate_of(document)
    ca = x509.load_pem_x509_certificate(document["ca_cert"].encode())

    assert cert.subject.rfc4514_string() == "CN=amm-1"
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    registration = json.loads(
        (p2e_home / "localstack/devices/amm-1/registration.json").read_text()
    )
    assert registration["thumbprint_sha256"] == thumbprint(cert)


def test_connect_file_is_private(p2e_home, tmp_path):
    out = tmp_path / "amm.json"

    main(["--device-id", "amm-1", "--out", str(out), "--local"])

    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list(tmp_path.glob(".*tmp")) == []


def test_connect_refuses_overwrite_without_force(p2e_home, tmp_path, capsys):
    out = tmp_path / "amm.json"
    out.write_text("keep me")

    code = main(["--device-id", "amm-1", "--out", str(out), "--local"])

    assert code == 2
    assert out.read_text() == "keep me"
    assert "already exists. Pass --force" in capsys.readouterr().err


def test_connect_local_refuses_registered_device(p2e_home, tmp_path, capsys):
    main(["--device-id", "amm-1", "--out", str(tmp_path / "a.json"), "--local"])

    code = main(["--device-id", "amm-1", "--out", str(tmp_path / "b.json"), "--local"])

    assert code == 2
    assert "already registered in the local stack" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


def test_connect_force_replaces_file_and_certificate(p2e_home, tmp_path):
    out = tmp_path / "amm.json"
    main(["--device-id", "amm-1", "--out", str(out), "--local"])
    first = json.loads(out.read_text())

    code = main(["--device-id", "amm-1", "--out", str(out), "--local", "--force"])

    second = json.loads(out.read_text())
    assert code == 0
    assert second["x509_certificate"] != first["x509_certificate"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize("device_id", ["amm/1", "amm#1", "", "a" * 129, "amm 1"])
def test_connect_rejects_invalid_device_id(p2e_home, tmp_path, capsys, device_id):
    code = main(
        ["--device-id", device_id, "--out", str(tmp_path / "x.json"), "--local"]
    )

    assert code == 2
    assert f"Device id {device_id!r} is invalid" in capsys.readouterr().err


def test_connect_local_rejects_cloud_identity(p2e_home, tmp_path, capsys):
    code = main(
        ["--device-id", "plant2edge-cloud", "--out", str(tmp_path / "x"), "--local"]
    )

    assert code == 2
    assert "reserved for the cloud side" in capsys.readouterr().err


def test_connect_local_rejects_websockets(p2e_home, tmp_path, capsys):
    code = main(
        [
            "--device-id",
            "a",
            "--out",
            str(tmp_path / "x"),
            "--local",
            "--transport",
            "wss",
        ]
    )

    assert code == 2
    assert "use --transport tls" in capsys.readouterr().err


def test_connect_hub_registers_self_signed_device(registry_manager, tmp_path):
    manager, manager_class = registry_manager
    out = tmp_path / "amm.json"

    assert main(["--device-id", "amm-7", "--out", str(out)]) == 0

    document = json.loads(out.read_text())
    cert = certificate_of(document)
    manager_class.from_connection_string.assert_called_once_with(CONNECTION_STRING)
    manager.get_device.assert_called_once_with("amm-7")
    manager.create_device_with_x509.assert_called_once_with(
        "amm-7", thumbprint(cert), thumbprint(cert), "enabled"
    )
    manager.update_device_with_x509.assert_not_called()
    assert cert.issuer == cert.subject
    assert cert.subject.rfc4514_string() == "CN=amm-7"
    cert.public_key().verify(
        cert.signature,
        cert.tbs_certificate_bytes,
        padding.PKCS1v15(),
        cert.signature_hash_algorithm,
    )


def test_connect_hub_writes_websocket_endpoint(registry_manager, tmp_path):
    out = tmp_path / "amm.json"

    main(["--device-id", "amm-7", "--out", str(out)])

    document = json.loads(out.read_text())
    assert document["endpoint"] == f"wss://{HUB}:443/$iothub/websocket"
    assert document["username"] == f"{HUB}/amm-7/?api-version=2021-04-12"
    assert document["topic_prefix"] == "devices/amm-7"
    assert document["client_id"] == "amm-7"
    assert "DigiCert Global Root G2" not in document["ca_cert"]
    assert document["ca_cert"].count("-----BEGIN CERTIFICATE-----") == 2
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_connect_hub_tls_endpoint(registry_manager, tmp_path):
    out = tmp_path / "amm.json"

    main(["--device-id", "amm-7", "--out", str(out), "--transport", "tls"])

    assert json.loads(out.read_text())["endpoint"] == f"tls://{HUB}:8883"


def test_connect_hub_refuses_existing_device(registry_manager, tmp_path, capsys):
    manager, _ = registry_manager
    manager.get_device.side_effect = None
    manager.get_device.return_value = mock.Mock(device_id="amm-7")

    code = main(["--device-id", "amm-7", "--out", str(tmp_path / "amm.json")])

    assert code == 2
    assert f"Device 'amm-7' already exists in IoT hub {HUB}" in capsys.readouterr().err
    manager.create_device_with_x509.assert_not_called()
    manager.update_device_with_x509.assert_not_called()
    assert not (tmp_path / "amm.json").exists()


def test_connect_hub_force_updates_existing_device(registry_manager, tmp_path):
    manager, _ = registry_manager
    manager.get_device.side_effect = None
    manager.get_device.return_value = mock.Mock(device_id="amm-7")
    out = tmp_path / "amm.json"

    assert main(["--device-id", "amm-7", "--out", str(out), "--force"]) == 0

    cert = certificate_of(json.loads(out.read_text()))
    manager.update_device_with_x509.assert_called_once_with(
        "amm-7", "*", thumbprint(cert), thumbprint(cert), "enabled"
    )
    manager.create_device_with_x509.assert_not_called()


def test_connect_hub_lookup_failure_names_permission(
    registry_manager, tmp_path, capsys
):
    manager, _ = registry_manager
    manager.get_device.side_effect = http_error(401)

    code = main(["--device-id", "amm-7", "--out", str(tmp_path / "amm.json")])

    assert code == 2
    assert "failed (HTTP 401)" in capsys.readouterr().err
    manager.create_device_with_x509.assert_not_called()


def test_connect_hub_uses_azure_ad_without_connection_string(
    registry_manager, tmp_path, monkeypatch
):
    _, manager_class = registry_manager
    monkeypatch.delenv("IOTHUB_CONNECTION_STRING")
    credential = mock.sentinel.credential
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda: credential)

    code = main(
        ["--device-id", "amm-7", "--out", str(tmp_path / "a.json"), "--hub", HUB]
    )

    assert code == 0
    manager_class.from_token_credential.assert_called_once_with(HUB, credential)
    manager_class.from_connection_string.assert_not_called()


def test_connect_hub_reads_named_env_var(registry_manager, tmp_path, monkeypatch):
    _, manager_class = registry_manager
    monkeypatch.delenv("IOTHUB_CONNECTION_STRING")
    monkeypatch.setenv("MY_HUB_CS", CONNECTION_STRING)

    code = main(
        [
            "--device-id",
            "amm-7",
            "--out",
            str(tmp_path / "a.json"),
            "--iothub-connection-string-env",
            "MY_HUB_CS",
        ]
    )

    assert code == 0
    manager_class.from_connection_string.assert_called_once_with(CONNECTION_STRING)


def test_connect_hub_rejects_mismatched_hub(registry_manager, tmp_path, capsys):
    code = main(
        [
            "--device-id",
            "a",
            "--out",
            str(tmp_path / "a.json"),
            "--hub",
            "other.example.net",
        ]
    )

    assert code == 2
    assert "differs from the connection string's HostName" in capsys.readouterr().err


def test_connect_never_prints_secrets(registry_manager, tmp_path, capsys, caplog):
    out = tmp_path / "amm.json"

    main(["--device-id", "amm-7", "--out", str(out)])

    captured = capsys.readouterr()
    document = json.loads(out.read_text())
    printed = captured.out + captured.err + caplog.text
    assert "amm.json" in captured.out
    assert SHARED_KEY not in printed
    assert "PRIVATE KEY" not in printed
    assert document["x509_private_key"] not in printed
