"""The local stack: its command line, its broker configuration and its process handling."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import stat

import paho.mqtt.client as mqtt
import pytest

from plant2edge.localstack import StackError, start_stack
from plant2edge.localstack.cli import main as stack_main
from plant2edge.localstack.processes import free_port, is_running, read_pid, wait_until


def test_stack_cli_start_status_stop(tmp_path, capsys):
    state = tmp_path / "stack"
    port = free_port()

    assert (
        stack_main(["--state-dir", str(state), "start", "--mqtt-port", str(port)]) == 0
    )
    started = capsys.readouterr().out
    status_code = stack_main(["--state-dir", str(state), "status"])
    status = json.loads(capsys.readouterr().out)
    broker_pid = read_pid(state / "broker" / "mosquitto.pid")
    azurite_pid = read_pid(state / "azurite" / "azurite.pid")
    stop_code = stack_main(["--state-dir", str(state), "stop"])
    stopped = capsys.readouterr().out

    assert f"127.0.0.1:{port}" in started
    assert status_code == 0
    assert status["mosquitto"]["running"] is True
    assert status["azurite"]["running"] is True
    assert status["mosquitto"]["pid"] == broker_pid
    assert stop_code == 0
    assert stopped.strip() == "Stopped: azurite, mosquitto"
    assert not is_running(broker_pid, str(state))
    assert not is_running(azurite_pid, "azurite")
    assert not (state / "stack.json").exists()


def test_stack_cli_status_without_stack(tmp_path, capsys):
    code = stack_main(["--state-dir", str(tmp_path), "status"])

    assert code == 1
    assert "Start one with 'plant2edge stack start'" in capsys.readouterr().err


def test_stack_cli_rejects_device_on_other_port(tmp_path, capsys):
    code = stack_main(
        [
            "--state-dir",
            str(tmp_path),
            "start",
            "--mqtt-port",
            "18883",
            "--device-id",
            "a",
        ]
    )

    assert code == 1
    assert "connect to port 8883 only" in capsys.readouterr().err


def test_stack_files_are_private(local_stack):
    private = [
        local_stack.stack_file,
        local_stack.state_dir / "ca" / "ca.key",
        local_stack.broker_files.server_key,
        local_stack.mqtt.client_key,
    ]

    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_broker_config_requires_client_certificates(local_stack):
    config = local_stack.broker_files.config.read_text()

    assert "listener 8883 127.0.0.1" in config
    assert "require_certificate true" in config
    assert "use_identity_as_username true" in config
    assert "allow_anonymous false" in config
    # max_qos must follow the listener line, or Mosquitto opens port 1883.
    assert config.index("max_qos 1") > config.index("listener 8883")
    assert "listen socket on port 1883" not in local_stack.broker_files.log.read_text()


def connect_client(stack, cert=None, key=None) -> int:
    """Connect to the broker; return the CONNACK code, or -1 if TLS failed.

    The network loop runs in this thread so that a TLS alert raised after the
    handshake surfaces here.
    """
    client = mqtt.Client(client_id=f"probe-{os.getpid()}", clean_session=True)
    client.tls_set(
        ca_certs=str(stack.mqtt.ca_cert),
        certfile=cert,
        keyfile=key,
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    result = {}
    client.on_connect = lambda c, u, f, rc: result.setdefault("rc", rc)
    try:
        client.connect("127.0.0.1", stack.mqtt.port, keepalive=10)
        for _ in range(50):
            if "rc" in result or client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                break
    except (ssl.SSLError, OSError):
        return -1
    finally:
        with contextlib.suppress(ssl.SSLError, OSError):
            client.disconnect()
    return result.get("rc", -1)


def test_broker_rejects_client_without_certificate(local_stack):
    assert connect_client(local_stack) != 0


def test_broker_accepts_cloud_identity(local_stack):
    code = connect_client(
        local_stack, str(local_stack.mqtt.client_cert), str(local_stack.mqtt.client_key)
    )

    assert code == 0


def mqtt_client(stack, client_id: str, cert: str, key: str, received: list):
    client = mqtt.Client(client_id=client_id, clean_session=True)
    client.tls_set(
        ca_certs=str(stack.mqtt.ca_cert),
        certfile=cert,
        keyfile=key,
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    client.on_message = lambda c, u, msg: received.append(msg.topic)
    subscribed = []
    client.on_subscribe = lambda c, u, mid, qos: subscribed.append(mid)
    client.connect("127.0.0.1", stack.mqtt.port)
    client.loop_start()
    return client, subscribed


def device_files(stack, device_id: str, folder) -> tuple[str, str]:
    connection = json.loads(stack.provision_device(device_id).read_text())
    cert, key = folder / f"{device_id}.pem", folder / f"{device_id}.key"
    cert.write_text(connection["x509_certificate"])
    key.write_text(connection["x509_private_key"])
    return str(cert), str(key)


def test_broker_acl_keeps_devices_to_own_topics(local_stack, tmp_path):
    device_seen, cloud_seen = [], []
    device, device_subs = mqtt_client(
        local_stack, "acl-a", *device_files(local_stack, "acl-a", tmp_path), device_seen
    )
    cloud, cloud_subs = mqtt_client(
        local_stack,
        "acl-cloud",
        str(local_stack.mqtt.client_cert),
        str(local_stack.mqtt.client_key),
        cloud_seen,
    )
    device.subscribe("devices/+/messages/devicebound/#", qos=1)
    cloud.subscribe("devices/+/messages/events/#", qos=1)
    assert wait_until(lambda: len(device_subs) == 1, 5)
    assert wait_until(lambda: len(cloud_subs) == 1, 5)

    # Each client sends to the other device first, then to acl-a's own topic.
    # The broker keeps their order, so the first message would arrive before
    # acl-a's own one if the ACL let it through.
    cloud.publish("devices/acl-b/messages/devicebound/x=1", b"b", qos=1)
    cloud.publish("devices/acl-a/messages/devicebound/x=1", b"a", qos=1)
    device.publish("devices/acl-b/messages/events/x=1", b"b", qos=1)
    device.publish("devices/acl-a/messages/events/x=1", b"a", qos=1)
    assert wait_until(lambda: len(device_seen) >= 1, 5)
    assert wait_until(lambda: len(cloud_seen) >= 1, 5)
    for client in (device, cloud):
        client.disconnect()
        client.loop_stop()

    assert device_seen == ["devices/acl-a/messages/devicebound/x=1"]
    assert cloud_seen == ["devices/acl-a/messages/events/x=1"]


def test_start_stack_rejects_busy_port(local_stack, tmp_path):
    with pytest.raises(StackError, match="Port 8883 on 127.0.0.1 is already in use"):
        start_stack(tmp_path / "second")

    assert read_pid(tmp_path / "second" / "azurite" / "azurite.pid") is None


def test_device_process_stops_by_pid(local_stack):
    connection = local_stack.provision_device("stop-me")
    device = local_stack.start_device(connection)
    pid = device.pid

    assert device.is_running()
    assert device.stop() is True
    assert not device.is_running()
    assert not device.pid_file.exists()
    assert not is_running(pid, device.marker)
