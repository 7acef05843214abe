"""Mosquitto configured to speak IoT Hub's device topics over TLS on loopback.

Every client authenticates with a certificate from the local CA and its
certificate's common name becomes its MQTT user name, so the ACL below limits a
device to its own topics. The cloud-side identity may write every device's
cloud-to-device topics and read every device's device-to-cloud topics.
"""

from __future__ import annotations

import getpass
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from plant2edge.localstack import pki
from plant2edge.localstack.processes import (
    StackError,
    is_running,
    kill_pid,
    log_tail,
    port_accepts,
    port_is_free,
    read_pid,
    spawn,
    stop_pid,
    wait_until,
)

logger = logging.getLogger(__name__)

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
# azure-iot-device 2.14 connects to port 8883 for MQTT over TLS and offers no
# setting to change it, so the simulated AI Model Manager needs the broker there.
DEVICE_PORT = 8883
CLOUD_IDENTITY = "plant2edge-cloud"
SERVER_NAMES = ("localhost", "127.0.0.1")

ACL = f"""\
# Cloud side: sends cloud-to-device messages to and reads events of every device.
user {CLOUD_IDENTITY}
topic write devices/+/messages/devicebound/#
topic read devices/+/messages/events/#

# Devices (user name = certificate common name = device id): own topics only.
pattern read devices/%u/messages/devicebound/#
pattern write devices/%u/messages/events/#
"""


@dataclass(frozen=True)
class BrokerFiles:
    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "mosquitto.conf"

    @property
    def acl(self) -> Path:
        return self.folder / "acl"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def persistence(self) -> Path:
        return self.folder / "persistence"

    @property
    def pid(self) -> Path:
        return self.folder / "mosquitto.pid"

    @property
    def log(self) -> Path:
        return self.folder / "mosquitto.log"


def find_mosquitto() -> str:
    for candidate in MOSQUITTO_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("mosquitto")
    if found:
        return found
    raise StackError(
        "mosquitto was not found in /usr/sbin or on PATH. Install it with "
        "'sudo apt-get install mosquitto' or 'make tools'."
    )


def render_config(files: BrokerFiles, ca_path: Path, port: int) -> str:
    # Mosquitto drops root privileges to the user named here; naming the
    # current user keeps the 0600 key files readable.
    return f"""\
# Written by plant2edge.localstack; rewritten at every start.
user {getpass.getuser()}
per_listener_settings false
allow_anonymous false
acl_file {files.acl}
persistence true
persistence_location {files.persistence}/
# Save after every change, so that a broker killed a moment after the cloud
# side subscribed still queues the device's messages for it after a restart.
autosave_interval 1
autosave_on_changes true
persistent_client_expiration 1h
log_dest stdout
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

listener {port} 127.0.0.1
cafile {ca_path}
certfile {files.server_cert}
keyfile {files.server_key}
require_certificate true
use_identity_as_username true
# max_qos is a listener setting: placed before "listener" it would open a
# default listener on port 1883 of every interface.
max_qos 1
"""


def prepare(files: BrokerFiles, ca: pki.CertificateAuthority, port: int) -> None:
    files.folder.mkdir(parents=True, exist_ok=True)
    files.persistence.mkdir(exist_ok=True)
    if not files.server_cert.is_file():
        pki.write_key_pair(
            ca,
            "localhost",
            files.server_cert,
            files.server_key,
            server_names=SERVER_NAMES,
        )
    pki.write_public(files.acl, ACL.encode())
    pki.write_public(files.config, render_config(files, ca.cert_path, port).encode())


def start(
    files: BrokerFiles, port: int, timeout: float = 10.0, port_wait: float = 0.0
) -> subprocess.Popen:
    """Start Mosquitto on 127.0.0.1:``port`` and wait until it accepts connections.

    ``port_wait`` gives a broker killed a moment ago time to release the port.
    """
    if is_running(read_pid(files.pid), marker(files)):
        raise StackError(
            f"Mosquitto from {files.folder} is already running "
            f"(pid {read_pid(files.pid)}). Stop it with 'plant2edge stack stop'."
        )
    if not wait_until(lambda: port_is_free(port), port_wait, 0.1):
        raise StackError(
            f"Port {port} on 127.0.0.1 is already in use, so the local MQTT broker "
            f"cannot start. azure-iot-device always connects to port {DEVICE_PORT}. "
            "Stop the other program (find it with "
            f"\"ss -ltnp 'sport = :{port}'\") or stop another local stack with "
            "'plant2edge stack stop'."
        )
    argv = [find_mosquitto(), "-c", str(files.config)]
    process = spawn(argv, log_path=files.log, pid_path=files.pid)
    if not wait_until(
        lambda: port_accepts(port) or process.poll() is not None, timeout
    ):
        process.kill()
        raise StackError(
            f"Mosquitto did not accept connections on 127.0.0.1:{port} within "
            f"{timeout:.0f} s. Log {files.log}:\n{log_tail(files.log)}"
        )
    if process.poll() is not None:
        raise StackError(
            f"Mosquitto exited with code {process.returncode} at start. "
            f"Log {files.log}:\n{log_tail(files.log)}"
        )
    logger.info("Mosquitto listening on 127.0.0.1:%d (pid %d)", port, process.pid)
    return process


def marker(files: BrokerFiles) -> str:
    """Return the command-line text that identifies this stack's Mosquitto.

    The option name and the trailing space keep the config of a state folder
    nested below another path, such as /x/tmp/s for /tmp/s, from matching.
    """
    return f"-c {files.config} "


def stop(files: BrokerFiles) -> bool:
    return stop_pid(files.pid, marker(files), name="Mosquitto")


def kill(files: BrokerFiles) -> bool:
    return kill_pid(files.pid, marker(files), name="Mosquitto")


def running(files: BrokerFiles) -> bool:
    return is_running(read_pid(files.pid), marker(files))
