"""``plant2edge connect-device``: create an AI Model Manager device and its connection file.

Against a real IoT hub the command creates a self-signed X.509 certificate and
key. It registers the device with X.509 self-signed authentication, giving the
certificate's SHA-256 thumbprint as primary and secondary thumbprint. Then it
writes the JSON connection file that AI Model Manager imports.

With ``--local`` the device is provisioned for the local stack instead: the
local CA signs the device certificate, because the local Mosquitto verifies
client certificates against that CA, and the device is recorded in the stack's
state folder (``devices/<id>/registration.json``). The simulated AI Model
Manager reads the same connection file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plant2edge.localstack import pki
from plant2edge.localstack.broker import CLOUD_IDENTITY, DEVICE_PORT
from plant2edge.localstack.paths import default_state_dir

logger = logging.getLogger(__name__)

API_VERSION = "2021-04-12"
DEFAULT_CONNECTION_STRING_ENV = "IOTHUB_CONNECTION_STRING"
LOCAL_HUB = "127.0.0.1"
CERT_VALIDITY_DAYS = 365
# IoT Hub device ids: up to 128 ASCII letters, digits and -.%_*?!(),:=@$'
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
# Device ids that IoT Hub accepts but that name a folder, not a file name.
FOLDER_NAMES = (".", "..")
HUB_PATTERN = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
# Roots that IoT Hub's server certificates chain to, taken from certifi's bundle.
IOT_HUB_ROOT_LABELS = (
    "DigiCert Global Root G2",
    "Microsoft RSA Root Certificate Authority 2017",
)


class ConnectError(RuntimeError):
    """The device or its connection file cannot be created as requested."""


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    certificate_pem: str
    private_key_pem: str
    thumbprint: str

    def __repr__(self) -> str:
        return f"DeviceIdentity({self.device_id!r}, thumbprint={self.thumbprint!r})"


@dataclass(frozen=True)
class ProvisionedDevice:
    device_id: str
    connection_file: Path
    thumbprint: str
    endpoint: str


def validate_device_id(device_id: str) -> str:
    if not DEVICE_ID_PATTERN.match(device_id):
        raise ConnectError(
            f"Device id {device_id!r} is invalid: IoT Hub accepts 1 to 128 ASCII "
            "letters, digits and the characters -.%_*?!(),:=@$' only."
        )
    return device_id


def self_signed_identity(
    device_id: str, days: int = CERT_VALIDITY_DAYS
) -> DeviceIdentity:
    """Create an RSA 2048 key and a self-signed client certificate with CN = device id."""
    key = pki.new_rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return DeviceIdentity(
        device_id,
        pki.cert_pem(cert).decode(),
        pki.private_key_pem(key).decode(),
        pki.sha256_thumbprint(cert),
    )


def local_ca_identity(device_id: str, state_dir: Path) -> DeviceIdentity:
    """Create a device key and a certificate signed by the local stack's CA."""
    ca = pki.ensure_ca(state_dir / "ca")
    key = pki.new_rsa_key()
    cert = pki.issue_certificate(ca, device_id, key)
    return DeviceIdentity(
        device_id,
        pki.cert_pem(cert).decode(),
        pki.private_key_pem(key).decode(),
        pki.sha256_thumbprint(cert),
    )


def iot_hub_root_certificates() -> str:
    """Return the PEM roots of IoT Hub's TLS certificates from certifi's bundle."""
    import certifi

    blocks = Path(certifi.where()).read_text().split("\n\n")
    found = [
        block[block.index("-----BEGIN") :].strip() + "\n"
        for block in blocks
        if any(f'# Label: "{label}"' in block for label in IOT_HUB_ROOT_LABELS)
    ]
    if not found:
        raise ConnectError(
            f"certifi's bundle {certifi.where()} lacks {IOT_HUB_ROOT_LABELS[0]}; "
            "pass the IoT hub's root certificate with --ca-cert FILE."
        )
    return "".join(found)


def endpoint_for(hub: str, transport: str) -> str:
    if transport == "wss":
        return f"wss://{hub}:443/$iothub/websocket"
    return f"tls://{hub}:{DEVICE_PORT}"


def connection_document(
    identity: DeviceIdentity, hub: str, transport: str, ca_cert: str
) -> dict:
    """Build AI Model Manager's connection file content."""
    return {
        "ca_cert": ca_cert,
        "x509_certificate": identity.certificate_pem,
        "x509_private_key": identity.private_key_pem,
        "endpoint": endpoint_for(hub, transport),
        "topic_prefix": f"devices/{identity.device_id}",
        "username": f"{hub}/{identity.device_id}/?api-version={API_VERSION}",
        "client_id": identity.device_id,
    }


def check_writable(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise ConnectError(
            f"Connection file {path} already exists. Pass --force to replace it "
            "(the device's old certificate then stops working)."
        )
    if not path.parent.is_dir():
        raise ConnectError(
            f"Folder {path.parent} for the connection file does not exist; "
            "create it first."
        )


def write_connection_file(path: Path, document: dict, force: bool) -> None:
    """Write ``document`` to ``path`` with mode 0600 via a temporary file.

    Without ``force`` an existing file is never replaced, even if it appears
    between the check and the rename (``os.link`` fails on an existing name).
    """
    check_writable(path, force)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise ConnectError(
                    f"Connection file {path} appeared while writing; pass --force "
                    "to replace it."
                ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def parse_connection_string(value: str) -> dict[str, str]:
    parts = dict(item.split("=", 1) for item in value.split(";") if "=" in item)
    if "HostName" not in parts:
        raise ConnectError(
            "The IoT Hub connection string has no HostName=...; copy the "
            "connection string of a shared access policy with registry write "
            "permission from the hub's 'Shared access policies' page."
        )
    return parts


def registry_manager(hub: str | None, connection_string: str | None):
    """Create an IoTHubRegistryManager from a connection string or Azure AD."""
    from azure.iot.hub import IoTHubRegistryManager

    if connection_string:
        return IoTHubRegistryManager.from_connection_string(connection_string)
    from azure.identity import DefaultAzureCredential

    return IoTHubRegistryManager.from_token_credential(hub, DefaultAzureCredential())


def _status_code(exc: Exception) -> int | None:
    return getattr(getattr(exc, "response", None), "status_code", None)


def register_device(
    manager, device_id: str, thumbprint: str, hub: str, force: bool
) -> str:
    """Register ``device_id`` with X.509 self-signed authentication.

    Return ``"created"`` or ``"updated"``. An existing device is replaced only
    with ``force``.
    """
    from msrest.exceptions import HttpOperationError

    try:
        existing = manager.get_device(device_id)
    except HttpOperationError as exc:
        if _status_code(exc) != 404:
            raise ConnectError(
                f"Looking up device {device_id!r} in IoT hub {hub} failed "
                f"(HTTP {_status_code(exc)}): {exc}. Check that the policy or "
                "identity has registry read and write permission."
            ) from exc
        existing = None
    if existing is None:
        manager.create_device_with_x509(device_id, thumbprint, thumbprint, "enabled")
        return "created"
    if not force:
        raise ConnectError(
            f"Device {device_id!r} already exists in IoT hub {hub}. Pass --force "
            "to give it the new certificate (its old certificate then stops "
            "working), or choose another --device-id."
        )
    manager.update_device_with_x509(device_id, "*", thumbprint, thumbprint, "enabled")
    return "updated"


def provision_hub_device(
    device_id: str,
    out: Path,
    *,
    hub: str | None,
    connection_string: str | None,
    transport: str = "wss",
    ca_cert: str | None = None,
    force: bool = False,
) -> ProvisionedDevice:
    """Register a device in a real IoT hub and write its connection file."""
    validate_device_id(device_id)
    if connection_string:
        host = parse_connection_string(connection_string)["HostName"]
        if hub and hub.lower() != host.lower():
            raise ConnectError(
                f"--hub {hub} differs from the connection string's HostName {host}; "
                "drop --hub or use the matching connection string."
            )
        hub = host
    if not hub:
        raise ConnectError(
            "No IoT hub given: pass --hub HOST (then Azure AD credentials are used) "
            f"or set {DEFAULT_CONNECTION_STRING_ENV} to the hub's connection string."
        )
    if not HUB_PATTERN.match(hub):
        raise ConnectError(
            f"--hub {hub!r} is not a host name like myhub.azure-devices.net."
        )
    check_writable(out, force)
    identity = self_signed_identity(device_id)
    manager = registry_manager(hub, connection_string)
    action = register_device(manager, device_id, identity.thumbprint, hub, force)
    logger.info("Device %s %s in IoT hub %s", device_id, action, hub)
    document = connection_document(
        identity, hub, transport, ca_cert or iot_hub_root_certificates()
    )
    write_connection_file(out, document, force)
    return ProvisionedDevice(device_id, out, identity.thumbprint, document["endpoint"])


def provision_local_device(
    device_id: str,
    out: Path,
    *,
    state_dir: Path | None = None,
    force: bool = False,
) -> ProvisionedDevice:
    """Provision ``device_id`` for the local stack and write its connection file."""
    validate_device_id(device_id)
    if device_id in FOLDER_NAMES:
        raise ConnectError(
            f"Device id {device_id!r} is invalid for the local stack: it names a "
            "folder, and the stack keeps each device in devices/<id>/. Choose an id "
            "with a letter or digit."
        )
    if device_id == CLOUD_IDENTITY:
        raise ConnectError(
            f"Device id {CLOUD_IDENTITY!r} is reserved for the cloud side of the "
            "local broker; choose another --device-id."
        )
    state_dir = state_dir or default_state_dir()
    registration = state_dir / "devices" / device_id / "registration.json"
    if registration.exists() and not force:
        raise ConnectError(
            f"Device {device_id!r} is already registered in the local stack "
            f"({registration}). Pass --force to give it a new certificate."
        )
    check_writable(out, force)
    identity = local_ca_identity(device_id, state_dir)
    ca_pem = pki.ensure_ca(state_dir / "ca").cert_pem()
    document = connection_document(identity, LOCAL_HUB, "tls", ca_pem)
    write_connection_file(out, document, force)
    record = {
        "device_id": device_id,
        "authentication": "x509 signed by the local CA",
        "thumbprint_sha256": identity.thumbprint,
        "connection_file": str(out.resolve()),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    pki.write_public(registration, (json.dumps(record, indent=2) + "\n").encode())
    return ProvisionedDevice(device_id, out, identity.thumbprint, document["endpoint"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="plant2edge connect-device",
        description=(
            "Create an AI Model Manager device in IoT Hub (X.509 self-signed) and "
            "write the connection file that AI Model Manager imports."
        ),
    )
    parser.add_argument("--device-id", required=True, help="IoT Hub device id")
    parser.add_argument(
        "--out", type=Path, required=True, help="connection file to write"
    )
    parser.add_argument("--hub", help="IoT hub host name, e.g. myhub.azure-devices.net")
    parser.add_argument(
        "--iothub-connection-string-env",
        default=DEFAULT_CONNECTION_STRING_ENV,
        metavar="VAR",
        help="environment variable holding the hub's connection string "
        f"(default {DEFAULT_CONNECTION_STRING_ENV}); without it Azure AD is used",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="provision the device for the local stack instead of a real hub",
    )
    parser.add_argument(
        "--transport",
        choices=("wss", "tls"),
        help="MQTT over websockets on 443 (default for a hub) or TLS on 8883",
    )
    parser.add_argument("--ca-cert", type=Path, help="PEM root certificate(s) to trust")
    parser.add_argument("--force", action="store_true", help="replace device and file")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> ProvisionedDevice:
    if args.local:
        if args.transport == "wss":
            raise ConnectError(
                "The local broker speaks MQTT over TLS on 127.0.0.1:8883 only; "
                "use --transport tls (or leave it out) with --local."
            )
        if args.hub:
            raise ConnectError("--hub and --local exclude each other; drop one.")
        return provision_local_device(args.device_id, args.out, force=args.force)
    ca_cert = args.ca_cert.read_text() if args.ca_cert else None
    return provision_hub_device(
        args.device_id,
        args.out,
        hub=args.hub,
        connection_string=os.environ.get(args.iothub_connection_string_env),
        transport=args.transport or "wss",
        ca_cert=ca_cert,
        force=args.force,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        device = run(args)
    except (ConnectError, OSError) as exc:
        print(f"plant2edge connect-device: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"Wrote {device.connection_file} (mode 0600) for device {device.device_id}\n"
        f"  endpoint:   {device.endpoint}\n"
        f"  thumbprint: {device.thumbprint} (SHA-256)\n"
        "The file holds the device's private key: import it into AI Model Manager "
        "and keep it out of version control."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
