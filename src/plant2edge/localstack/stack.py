"""Start, find and stop the local stack: Mosquitto, Azurite and simulated devices.

Everything lives in one state folder (``plant2edge.localstack.paths``):

- ``ca/``: the local CA (kept between restarts so connection files stay valid)
- ``broker/``: mosquitto.conf, ACL, server certificate and key, persistence,
  PID file and log
- ``cloud/``: the cloud-side client certificate and key
- ``azurite/``: PID file, port and log
- ``devices/<id>/``: registration, PID file, log and status of a simulated device
- ``stack.json`` (0600): endpoints and credentials that the delivery step reads
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from plant2edge.localstack import azurite, broker, pki
from plant2edge.localstack.paths import STACK_FILE, default_state_dir
from plant2edge.localstack.processes import (
    StackError,
    free_port,
    is_running,
    kill_pid,
    log_tail,
    read_pid,
    spawn,
    stop_pid,
    wait_until,
)

logger = logging.getLogger(__name__)

DEVICE_READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    ca_cert: Path
    client_cert: Path
    client_key: Path
    identity: str


@dataclass(frozen=True)
class BlobEndpoint:
    endpoint: str
    account_name: str
    account_key: str = field(repr=False)
    port: int = 0

    @property
    def connection_string(self) -> str:
        return azurite.connection_string(self.port, self.account_key)


@dataclass
class DeviceProcess:
    """A simulated AI Model Manager running as its own process."""

    device_id: str
    folder: Path
    process: subprocess.Popen | None = None

    @property
    def pid_file(self) -> Path:
        return self.folder / "device.pid"

    @property
    def log(self) -> Path:
        return self.folder / "device.log"

    @property
    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    @property
    def marker(self) -> str:
        return f"--state-dir {self.folder} "

    def is_running(self) -> bool:
        return is_running(self.pid, self.marker)

    def status(self) -> dict:
        try:
            return json.loads((self.folder / "status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def delivery_state(self, delivery_id: str | None = None) -> str | None:
        """Return the last state reported for ``delivery_id`` (or any delivery)."""
        deliveries = self.status().get("deliveries", {})
        if delivery_id is not None:
            return (deliveries.get(delivery_id) or {}).get("state")
        states = [d.get("state") for d in deliveries.values() if d.get("state")]
        return states[-1] if states else None

    def stop(self) -> bool:
        return stop_pid(self.pid_file, self.marker, name=f"device {self.device_id}")

    def kill(self) -> bool:
        return kill_pid(self.pid_file, self.marker, name=f"device {self.device_id}")


@dataclass
class Stack:
    """The running local stack; use it as a context manager or call ``stop()``."""

    state_dir: Path
    mqtt: MqttEndpoint
    blob: BlobEndpoint
    devices: dict[str, DeviceProcess] = field(default_factory=dict)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def stack_file(self) -> Path:
        return self.state_dir / STACK_FILE

    @property
    def broker_files(self) -> broker.BrokerFiles:
        return broker.BrokerFiles(self.state_dir / "broker")

    @property
    def azurite_files(self) -> azurite.AzuriteFiles:
        return azurite.AzuriteFiles(self.state_dir / "azurite")

    def provision_device(
        self, device_id: str, out: Path | None = None, *, force: bool = False
    ) -> Path:
        """Create the device's connection file; default ``devices/<id>/connection.json``."""
        from plant2edge.connect import provision_local_device

        out = out or self.state_dir / "devices" / device_id / "connection.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        provision_local_device(device_id, out, state_dir=self.state_dir, force=force)
        return out

    def start_device(
        self,
        connection_file: Path,
        *,
        mode: str = "normal",
        state_delay: float | None = None,
        drop_seconds: float | None = None,
        sample_rows: Path | None = None,
        wheels: Path | None = None,
        timeout: float = DEVICE_READY_TIMEOUT,
    ) -> DeviceProcess:
        """Start a simulated AI Model Manager and wait until it is subscribed.

        ``sample_rows`` makes it run each package in LocalPipelineRunner, which
        installs the package's dependencies from ``wheels`` when given.
        """
        device_id = json.loads(Path(connection_file).read_text())["client_id"]
        if device_id in (".", ".."):
            raise StackError(
                f"The connection file {connection_file} has device id {device_id!r}, "
                "which names a folder, so the device cannot have its own folder in "
                "devices/. Provision a device whose id has a letter or digit."
            )
        folder = self.state_dir / "devices" / device_id
        folder.mkdir(parents=True, exist_ok=True)
        device = DeviceProcess(device_id, folder)
        if device.is_running():
            raise StackError(
                f"A simulated device {device_id} is already running (pid {device.pid})."
            )
        argv = [
            sys.executable,
            "-m",
            "plant2edge.localstack.device",
            "--connection-file",
            str(Path(connection_file).resolve()),
            "--mode",
            mode,
            "--state-dir",
            str(folder),
        ]
        if state_delay is not None:
            argv += ["--state-delay", str(state_delay)]
        if drop_seconds is not None:
            argv += ["--drop-seconds", str(drop_seconds)]
        if sample_rows is not None:
            argv += ["--run-package", "--sample-rows", str(sample_rows)]
        if wheels is not None:
            argv += ["--wheels", str(wheels)]
        (folder / "ready").unlink(missing_ok=True)
        process = spawn(argv, log_path=device.log, pid_path=device.pid_file)
        device.process = process
        ready = wait_until(
            lambda: (folder / "ready").exists() or process.poll() is not None,
            timeout,
            0.05,
        )
        if not ready or process.poll() is not None:
            process.kill()
            raise StackError(
                f"Simulated device {device_id} did not connect within {timeout:.0f} s "
                f"(exit code {process.poll()}). Log {device.log}:\n{log_tail(device.log)}"
            )
        logger.info(
            "Simulated AI Model Manager %s ready (pid %d)", device_id, process.pid
        )
        self.devices[device_id] = device
        return device

    def kill_broker(self) -> bool:
        """Kill Mosquitto with SIGKILL, as a crash would."""
        return broker.kill(self.broker_files)

    def start_broker(self) -> None:
        """Start Mosquitto again with the same configuration and persistence."""
        broker.start(self.broker_files, self.mqtt.port, port_wait=5.0)
        self._write_stack_file()

    def restart_broker(self) -> None:
        self.kill_broker()
        self.start_broker()

    def device_processes(self) -> list[DeviceProcess]:
        folder = self.state_dir / "devices"
        found = {d.device_id: d for d in self.devices.values()}
        for pid_file in sorted(folder.glob("*/device.pid")):
            found.setdefault(
                pid_file.parent.name,
                DeviceProcess(pid_file.parent.name, pid_file.parent),
            )
        return list(found.values())

    def status(self) -> dict:
        return {
            "state_dir": str(self.state_dir),
            "mosquitto": {
                "running": broker.running(self.broker_files),
                "pid": read_pid(self.broker_files.pid),
                "endpoint": f"mqtts://{self.mqtt.host}:{self.mqtt.port}",
            },
            "azurite": {
                "running": azurite.running(self.azurite_files),
                "pid": read_pid(self.azurite_files.pid),
                "endpoint": self.blob.endpoint,
            },
            "devices": {
                d.device_id: {"running": d.is_running(), "pid": d.pid}
                for d in self.device_processes()
            },
        }

    def stop(self) -> list[str]:
        """Stop the simulated devices, Azurite and Mosquitto; return what was stopped."""
        stopped = []
        for device in self.device_processes():
            if device.stop():
                stopped.append(f"device {device.device_id}")
        if azurite.stop(self.azurite_files):
            stopped.append("azurite")
        if broker.stop(self.broker_files):
            stopped.append("mosquitto")
        self.stack_file.unlink(missing_ok=True)
        return stopped

    def _write_stack_file(self) -> None:
        document = {
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "mqtt": {
                "host": self.mqtt.host,
                "port": self.mqtt.port,
                "ca_cert": str(self.mqtt.ca_cert),
                "client_cert": str(self.mqtt.client_cert),
                "client_key": str(self.mqtt.client_key),
                "identity": self.mqtt.identity,
            },
            "blob": {
                "endpoint": self.blob.endpoint,
                "account_name": self.blob.account_name,
                "port": self.blob.port,
                "connection_string": self.blob.connection_string,
            },
            "pids": {
                "mosquitto": read_pid(self.broker_files.pid),
                "azurite": read_pid(self.azurite_files.pid),
            },
        }
        pki.write_private(
            self.stack_file, (json.dumps(document, indent=2) + "\n").encode()
        )


def start_stack(
    state_dir: Path | None = None,
    *,
    mqtt_port: int = broker.DEVICE_PORT,
    blob_port: int | None = None,
) -> Stack:
    """Start Mosquitto and Azurite on loopback and return the running stack.

    On any failure the servers started so far are stopped again.
    """
    state_dir = Path(state_dir or default_state_dir()).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if (state_dir / STACK_FILE).exists() and _any_running(state_dir):
        raise StackError(
            f"A local stack from {state_dir} is already running. Stop it with "
            f"'plant2edge stack stop' (state folder {state_dir})."
        )
    ca = pki.ensure_ca(state_dir / "ca")
    cloud_cert, cloud_key = state_dir / "cloud/cloud.pem", state_dir / "cloud/cloud.key"
    if not cloud_cert.is_file() or not cloud_key.is_file():
        pki.write_key_pair(ca, broker.CLOUD_IDENTITY, cloud_cert, cloud_key)
    blob_port = blob_port or free_port()
    stack = Stack(
        state_dir,
        MqttEndpoint(
            "127.0.0.1",
            mqtt_port,
            ca.cert_path,
            cloud_cert,
            cloud_key,
            broker.CLOUD_IDENTITY,
        ),
        BlobEndpoint(
            azurite.blob_endpoint(blob_port),
            azurite.ACCOUNT_NAME,
            azurite.new_account_key(),
            blob_port,
        ),
    )
    try:
        broker.prepare(stack.broker_files, ca, mqtt_port)
        broker.start(stack.broker_files, mqtt_port)
        azurite.start(stack.azurite_files, blob_port, stack.blob.account_key)
        stack._write_stack_file()
    except BaseException:
        stack.stop()
        raise
    return stack


def _any_running(state_dir: Path) -> bool:
    return broker.running(broker.BrokerFiles(state_dir / "broker")) or azurite.running(
        azurite.AzuriteFiles(state_dir / "azurite")
    )


def attach_stack(state_dir: Path | None = None) -> Stack:
    """Return the stack that ``stack.json`` in ``state_dir`` describes."""
    state_dir = Path(state_dir or default_state_dir()).resolve()
    try:
        document = json.loads((state_dir / STACK_FILE).read_text())
        return _stack_from(state_dir, document)
    except FileNotFoundError as exc:
        raise StackError(
            f"No local stack in {state_dir} ({STACK_FILE} is missing). Start one "
            "with 'plant2edge stack start'."
        ) from exc
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        # The message names the file only, because its content contains the key.
        raise StackError(
            f"{state_dir / STACK_FILE} is damaged ({type(exc).__name__}). Stop the "
            "servers with 'plant2edge stack stop', which finds them by their PID "
            "files, and start the stack again."
        ) from exc


def _stack_from(state_dir: Path, document: dict) -> Stack:
    mqtt, blob = document["mqtt"], document["blob"]
    account_key = dict(
        item.split("=", 1)
        for item in blob["connection_string"].split(";")
        if "=" in item
    )["AccountKey"]
    return Stack(
        state_dir,
        MqttEndpoint(
            mqtt["host"],
            mqtt["port"],
            Path(mqtt["ca_cert"]),
            Path(mqtt["client_cert"]),
            Path(mqtt["client_key"]),
            mqtt["identity"],
        ),
        BlobEndpoint(blob["endpoint"], blob["account_name"], account_key, blob["port"]),
    )


def stop_stack(state_dir: Path | None = None) -> list[str]:
    """Stop whatever runs from ``state_dir``, even if ``stack.json`` is gone."""
    state_dir = Path(state_dir or default_state_dir()).resolve()
    try:
        stack = attach_stack(state_dir)
    except StackError:
        stack = Stack(
            state_dir,
            MqttEndpoint("127.0.0.1", broker.DEVICE_PORT, Path(), Path(), Path(), ""),
            BlobEndpoint("", "", "", 0),
        )
    return stack.stop()
