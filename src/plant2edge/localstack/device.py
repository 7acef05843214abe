"""A simulated AI Model Manager: an IoT Hub device that accepts edge package deliveries.

It connects with azure-iot-device, exactly as a device connects to IoT Hub,
using the connection file written by ``plant2edge connect-device``, and speaks
the device side of the delivery protocol:

1. On a cloud-to-device message ``type=event, kind=newDelivery`` it sends a
   device-to-cloud ``type=event, kind=presignedUrlRequest`` with the same
   ``deliveryId``.
2. On ``type=data, kind=presignedUrlResponse`` it downloads the package from
   ``attributes.presignedUrl`` and reports ``type=state`` messages
   ``Downloading``, ``Verifying``, ``Deploying`` and ``Success``, or ``Error``
   with a ``reason``.

Verification checks the zip's integrity, its SHA-256 against the value the
cloud stored with the blob (``x-ms-meta-sha256``), and that a
``pipeline_config.yml`` inside it parses as a YAML mapping.

Run it as ``python -m plant2edge.localstack.device --connection-file F
--state-dir D``; ``--mode`` selects a misbehaviour for tests. It writes
``device.pid``, ``ready`` (once subscribed) and ``status.json`` into D.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

logger = logging.getLogger("plant2edge.localstack.device")

MODES = ("normal", "silent", "error", "foreign", "drop", "slow")
FINAL_STATES = ("Success", "Error")
PIPELINE_CONFIG = "pipeline_config.yml"
SHA256_HEADER = "x-ms-meta-sha256"
DOWNLOAD_CHUNK = 1 << 20
# While the broker restarts, azure-iot-device fails a send at once, so the
# simulator sends the message again every second for up to this long.
SEND_RETRY_SECONDS = 60.0
SEND_RETRY_DELAY = 1.0
CONNECTION_KEYS = (
    "ca_cert",
    "x509_certificate",
    "x509_private_key",
    "endpoint",
    "topic_prefix",
    "username",
    "client_id",
)


class DeviceError(RuntimeError):
    """The simulated device cannot start with the given connection file or options."""


class DeliveryStepError(RuntimeError):
    """A delivery failed on the device; the message becomes the Error reason."""


@dataclass(frozen=True)
class DeviceOptions:
    mode: str = "normal"
    state_delay: float = 0.0
    drop_seconds: float = 1.0
    run_package: bool = False
    sample_rows: Path | None = None


@dataclass
class Delivery:
    delivery_id: str
    package_id: str
    package_version: str
    phase: str = "requested"
    state: str | None = None
    reason: str | None = None
    sha256: str | None = None
    updated_at: str = ""


@dataclass
class Connection:
    hostname: str
    device_id: str
    websockets: bool
    ca_cert: str
    certificate: str
    private_key: str = field(repr=False)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def redact_url(url: str) -> str:
    """Drop the query string, which contains the SAS token."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def read_connection_file(path: Path) -> Connection:
    """Parse AI Model Manager's connection file into what azure-iot-device needs."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DeviceError(
            f"Connection file {path} not found. Create it with "
            "'plant2edge connect-device --local --device-id ID --out FILE'."
        ) from exc
    except json.JSONDecodeError as exc:
        raise DeviceError(f"Connection file {path} is not valid JSON: {exc}") from exc
    missing = [key for key in CONNECTION_KEYS if not data.get(key)]
    if missing:
        raise DeviceError(
            f"Connection file {path} lacks {', '.join(missing)}. Write it again "
            "with 'plant2edge connect-device --force'."
        )
    endpoint = urllib.parse.urlsplit(data["endpoint"])
    if endpoint.scheme == "tls" and endpoint.port not in (None, 8883):
        raise DeviceError(
            f"Endpoint {data['endpoint']} in {path} uses port {endpoint.port}, but "
            "azure-iot-device connects to port 8883 for MQTT over TLS only."
        )
    if endpoint.scheme not in ("tls", "wss") or not endpoint.hostname:
        raise DeviceError(
            f"Endpoint {data['endpoint']!r} in {path} is not tls://HOST:8883 or "
            "wss://HOST:443/$iothub/websocket."
        )
    return Connection(
        hostname=endpoint.hostname,
        device_id=data["client_id"],
        websockets=endpoint.scheme == "wss",
        ca_cert=data["ca_cert"],
        certificate=data["x509_certificate"],
        private_key=data["x509_private_key"],
    )


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def download(url: str, dest: Path) -> tuple[str, int, str | None]:
    """Download ``url`` to ``dest``; return its SHA-256, size and the stored SHA-256."""
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            urllib.request.urlopen(url, timeout=60) as response,
            open(dest, "wb") as out,
        ):
            expected = response.headers.get(SHA256_HEADER)
            while chunk := response.read(DOWNLOAD_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as exc:
        code = exc.headers.get("x-ms-error-code", "") if exc.headers else ""
        raise DeliveryStepError(
            f"Download of {redact_url(url)} failed with HTTP {exc.code} {code}".strip()
        ) from exc
    except OSError as exc:
        raise DeliveryStepError(f"Download of {redact_url(url)} failed: {exc}") from exc
    return digest.hexdigest(), size, expected


def verify_package(path: Path, sha256: str, expected_sha256: str | None) -> dict:
    """Check the zip's integrity, its SHA-256 and its pipeline configuration."""
    if not expected_sha256:
        raise DeliveryStepError(
            f"The download has no {SHA256_HEADER} header, so its SHA-256 "
            "cannot be checked."
        )
    if sha256 != expected_sha256.lower():
        raise DeliveryStepError(
            f"SHA-256 mismatch: downloaded {sha256}, expected {expected_sha256}."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise DeliveryStepError(f"Zip member {broken} is corrupt.")
            configs = [n for n in archive.namelist() if n.endswith(PIPELINE_CONFIG)]
            if not configs:
                raise DeliveryStepError(
                    f"The package contains no {PIPELINE_CONFIG}; it is not an edge "
                    "package."
                )
            config = yaml.safe_load(archive.read(configs[0]))
    except zipfile.BadZipFile as exc:
        raise DeliveryStepError(f"The package is not a valid zip file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise DeliveryStepError(f"{PIPELINE_CONFIG} is not valid YAML: {exc}") from exc
    if not isinstance(config, dict):
        raise DeliveryStepError(f"{PIPELINE_CONFIG} is not a YAML mapping.")
    return config


def run_package(path: Path, sample_rows: Path, work_dir: Path) -> int:
    """Run the package in simaticai's LocalPipelineRunner on the sample rows.

    Return the number of outputs. The package is copied into ``work_dir``
    first, because the runner writes ``<package>_tested.zip`` beside it.
    """
    # NOTE: no automated test covers a successful run: it needs a real edge
    # package, target-platform wheels (PIP_FIND_LINKS) and about 45 s.
    import pandas as pd
    from simaticai.testing.pipeline_runner import LocalPipelineRunner

    if sample_rows.suffix == ".parquet":
        frame = pd.read_parquet(sample_rows)
    elif sample_rows.suffix == ".csv":
        frame = pd.read_csv(sample_rows)
    else:
        frame = pd.read_json(sample_rows)
    rows = frame.to_dict(orient="records")
    work_dir.mkdir(parents=True, exist_ok=True)
    package = Path(shutil.copy(path, work_dir / path.name))
    try:
        with LocalPipelineRunner(package, path=work_dir / "runner") as runner:
            outputs = runner.run_pipeline(rows)
    except Exception as exc:
        raise DeliveryStepError(
            f"The package failed in LocalPipelineRunner: {exc}"
        ) from exc
    return len(outputs or [])


def send_with_retry(client, message, retry_seconds: float) -> None:
    """Send ``message``, trying again every second while the connection is down."""
    from azure.iot.device.exceptions import (
        ConnectionDroppedError,
        ConnectionFailedError,
        NoConnectionError,
        OperationTimeout,
    )

    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            client.send_message(message)
            return
        except (
            ConnectionDroppedError,
            ConnectionFailedError,
            NoConnectionError,
            OperationTimeout,
        ) as exc:
            if time.monotonic() >= deadline:
                raise
            logger.warning(
                "Delivery %s: sending failed (%s); trying again in %.0f s",
                message.custom_properties.get("deliveryId"),
                type(exc).__name__,
                SEND_RETRY_DELAY,
            )
            time.sleep(SEND_RETRY_DELAY)


class ModelManager:
    """The device side of the delivery protocol, independent of the MQTT client."""

    def __init__(self, client, device_id: str, state_dir: Path, options: DeviceOptions):
        self.client = client
        self.device_id = device_id
        self.state_dir = state_dir
        self.options = options
        self.deliveries: dict[str, Delivery] = {}
        self.ignored = 0
        self.packages_dir = state_dir / "packages"
        self.packages_dir.mkdir(parents=True, exist_ok=True)

    # -- outgoing messages -------------------------------------------------

    def send(self, delivery_id: str, properties: dict[str, str], body: dict) -> None:
        from azure.iot.device import Message

        message = Message(
            json.dumps(body),
            content_encoding="utf-8",
            content_type="application/json",
        )
        message.custom_properties.update({"deliveryId": delivery_id, **properties})
        send_with_retry(self.client, message, SEND_RETRY_SECONDS)

    def request_url(self, delivery_id: str) -> None:
        logger.info("Delivery %s: sending presignedUrlRequest", delivery_id)
        body = {"timestamp": utc_now(), "eventId": str(uuid.uuid4())}
        self.send(delivery_id, {"type": "event", "kind": "presignedUrlRequest"}, body)

    def report(self, delivery: Delivery, state: str, reason: str | None = None) -> None:
        if self.options.state_delay and delivery.state is not None:
            time.sleep(self.options.state_delay)
        delivery.state, delivery.reason = state, reason
        delivery.updated_at = utc_now()
        body = {"state": state, "timestamp": delivery.updated_at}
        if reason:
            body["reason"] = reason
        logger.info(
            "Delivery %s: state %s%s",
            delivery.delivery_id,
            state,
            f" ({reason})" if reason else "",
        )
        self.send(delivery.delivery_id, {"type": "state"}, body)
        self.write_status()

    # -- incoming messages -------------------------------------------------

    def handle(self, properties: dict[str, str], data: bytes) -> None:
        delivery_id = properties.get("deliveryId")
        kind = properties.get("kind")
        try:
            body = json.loads(data or b"{}")
        except json.JSONDecodeError:
            logger.warning("Ignoring a message with a body that is not JSON: %s", kind)
            return
        if kind == "newDelivery" and delivery_id:
            self.on_new_delivery(delivery_id, body)
        elif kind == "presignedUrlResponse" and delivery_id:
            self.on_url_response(delivery_id, body)
        else:
            self.ignored += 1
            logger.info("Ignoring message kind=%s deliveryId=%s", kind, delivery_id)

    def on_new_delivery(self, delivery_id: str, body: dict) -> None:
        if delivery_id in self.deliveries:
            logger.info("Delivery %s: duplicate newDelivery ignored", delivery_id)
            return
        delivery = Delivery(
            delivery_id,
            str(body.get("packageId", "")),
            str(body.get("packageVersion", "")),
        )
        self.deliveries[delivery_id] = delivery
        logger.info(
            "Delivery %s: newDelivery of package %s version %s",
            delivery_id,
            delivery.package_id,
            delivery.package_version,
        )
        self.write_status()
        if self.options.mode == "silent":
            logger.info("Delivery %s: not responding (mode silent)", delivery_id)
            return
        if self.options.mode == "foreign":
            foreign_id = str(uuid.uuid4())
            logger.info(
                "Delivery %s: first responding as delivery %s (mode foreign)",
                delivery_id,
                foreign_id,
            )
            self.request_url(foreign_id)
            self.send(foreign_id, {"type": "state"}, {"state": "Success"})
        self.request_url(delivery_id)
        if self.options.mode == "drop":
            self.drop_connection()

    def drop_connection(self) -> None:
        logger.info(
            "Dropping the connection for %.1f s (mode drop)", self.options.drop_seconds
        )
        self.client.disconnect()
        time.sleep(self.options.drop_seconds)
        self.client.connect()
        logger.info("Reconnected")

    def on_url_response(self, delivery_id: str, body: dict) -> None:
        delivery = self.deliveries.get(delivery_id)
        if delivery is None or delivery.phase != "requested":
            logger.info("Delivery %s: presignedUrlResponse ignored", delivery_id)
            return
        url = (body.get("attributes") or {}).get("presignedUrl")
        delivery.phase = "installing"
        if not url:
            self.report(delivery, "Error", "presignedUrlResponse has no presignedUrl")
        else:
            self.install(delivery, url)
        delivery.phase = "done"

    def install(self, delivery: Delivery, url: str) -> None:
        target = self.packages_dir / f"{delivery.delivery_id}.zip"
        try:
            self.report(delivery, "Downloading")
            sha256, size, expected = download(url, target)
            delivery.sha256 = sha256
            logger.info(
                "Delivery %s: downloaded %d bytes from %s",
                delivery.delivery_id,
                size,
                redact_url(url),
            )
            if self.options.mode == "error":
                raise DeliveryStepError("Simulated failure (device mode 'error').")
            self.report(delivery, "Verifying")
            verify_package(target, sha256, expected)
            self.report(delivery, "Deploying")
            if self.options.run_package and self.options.sample_rows:
                work = self.state_dir / "runner" / delivery.delivery_id
                outputs = run_package(target, self.options.sample_rows, work)
                logger.info(
                    "Delivery %s: runner returned %d outputs",
                    delivery.delivery_id,
                    outputs,
                )
            deployed = self.deployed_path(delivery)
            deployed.parent.mkdir(exist_ok=True)
            os.replace(target, deployed)
            self.report(delivery, "Success")
        except DeliveryStepError as exc:
            target.unlink(missing_ok=True)
            self.report(delivery, "Error", str(exc))
        except Exception as exc:
            # A bug or an OS error must still end the delivery with a state.
            logger.exception("Delivery %s: unexpected failure", delivery.delivery_id)
            target.unlink(missing_ok=True)
            self.report(delivery, "Error", f"Unexpected {type(exc).__name__}: {exc}")

    def deployed_path(self, delivery: Delivery) -> Path:
        """Return where the verified package is kept, named after its package id."""
        name = re.sub(r"[^A-Za-z0-9._-]", "_", delivery.package_id) or "package"
        return self.state_dir / "deployed" / f"{name}.zip"

    def write_status(self) -> None:
        status = {
            "device_id": self.device_id,
            "mode": self.options.mode,
            "ignored_messages": self.ignored,
            "deliveries": {
                key: {
                    "package_id": d.package_id,
                    "package_version": d.package_version,
                    "state": d.state,
                    "reason": d.reason,
                    "sha256": d.sha256,
                    "updated_at": d.updated_at,
                }
                for key, d in self.deliveries.items()
            },
        }
        write_atomic(self.state_dir / "status.json", json.dumps(status, indent=2))


def write_identity(connection: Connection, folder: Path) -> tuple[Path, Path]:
    """Write the certificate and key to files, which azure-iot-device's X509 reads."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "device.pem", folder / "device.key"
    write_atomic(cert_path, connection.certificate)
    write_atomic(key_path, connection.private_key, mode=0o600)
    return cert_path, key_path


def create_client(connection: Connection, identity_dir: Path):
    from azure.iot.device import X509, IoTHubDeviceClient

    cert_path, key_path = write_identity(connection, identity_dir)
    return IoTHubDeviceClient.create_from_x509_certificate(
        x509=X509(str(cert_path), str(key_path)),
        hostname=connection.hostname,
        device_id=connection.device_id,
        server_verification_cert=connection.ca_cert,
        websockets=connection.websockets,
        connection_retry_interval=1,
        keep_alive=30,
    )


def serve(connection_file: Path, state_dir: Path, options: DeviceOptions) -> int:
    state_dir.mkdir(parents=True, exist_ok=True)
    ready = state_dir / "ready"
    ready.unlink(missing_ok=True)
    (state_dir / "device.pid").write_text(f"{os.getpid()}\n")
    connection = read_connection_file(connection_file)
    client = create_client(connection, state_dir / "identity")
    manager = ModelManager(client, connection.device_id, state_dir, options)
    inbox: queue.Queue = queue.Queue()
    stop = threading.Event()

    def on_message(message) -> None:
        properties = dict(message.custom_properties)
        inbox.put((properties, message.data))

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    client.connect()
    # Setting the handler subscribes to the cloud-to-device topic.
    client.on_message_received = on_message
    manager.write_status()
    ready.write_text(utc_now())
    logger.info(
        "AI Model Manager simulator for device %s connected to %s (mode %s)",
        connection.device_id,
        connection.hostname,
        options.mode,
    )
    while not stop.is_set():
        try:
            properties, data = inbox.get(timeout=0.2)
        except queue.Empty:
            continue
        try:
            manager.handle(properties, data)
        except Exception:
            # The device logs the failure and keeps serving later deliveries.
            logger.exception(
                "Delivery %s: handling the %s message failed",
                properties.get("deliveryId"),
                properties.get("kind"),
            )
    logger.info("Stopping the simulator for device %s", connection.device_id)
    ready.unlink(missing_ok=True)
    client.shutdown()
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m plant2edge.localstack.device",
        description="Simulate AI Model Manager receiving edge package deliveries.",
    )
    parser.add_argument("--connection-file", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--mode", choices=MODES, default="normal")
    parser.add_argument(
        "--state-delay",
        type=float,
        default=None,
        help="seconds between reported states (default 0, or 1 in mode slow)",
    )
    parser.add_argument(
        "--drop-seconds",
        type=float,
        default=1.0,
        help="seconds the connection stays down in mode drop",
    )
    parser.add_argument(
        "--run-package",
        action="store_true",
        help="run each package in LocalPipelineRunner on --sample-rows",
    )
    parser.add_argument(
        "--sample-rows", type=Path, help="parquet, CSV or JSON rows to feed the package"
    )
    parser.add_argument(
        "--wheels",
        type=Path,
        help="folder of wheels that LocalPipelineRunner installs from, offline",
    )
    args = parser.parse_args(argv)
    if args.run_package and not args.sample_rows:
        parser.error("--run-package needs --sample-rows FILE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("SIMATICAI_TELEMETRY", "false")
    if args.wheels:
        os.environ.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(args.wheels.resolve()))
    # Both libraries log topics and URLs at INFO or DEBUG; keep them quiet.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    delay = args.state_delay
    if delay is None:
        delay = 1.0 if args.mode == "slow" else 0.0
    options = DeviceOptions(
        mode=args.mode,
        state_delay=delay,
        drop_seconds=args.drop_seconds,
        run_package=args.run_package,
        sample_rows=args.sample_rows,
    )
    try:
        return serve(args.connection_file, args.state_dir, options)
    except DeviceError as exc:
        logger.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
