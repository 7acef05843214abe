"""Deliver a registered edge package to Siemens AI Model Manager over IoT Hub.

The step resolves the package version in the MLflow registry, checks its
approval, downloads it and verifies its SHA-256. It uploads the package to blob
storage and runs the delivery protocol with the device (newDelivery, presigned
URL, states). Only after the device reports Success does it tag the version as
delivered. It writes ``report.json`` and ``report.md``, which never contain a
SAS token or a connection string.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from delivery_blob import (
    BlobError,
    UploadedBlob,
    account_key,
    read_sas_url,
    redact_url,
    service_client,
    upload_package,
    validate_container,
    validate_sas_expiry,
)
from delivery_credentials import (
    CredentialError,
    iothub_connection_strings,
    mqtt_settings,
    storage_connection_string,
)
from delivery_protocol import (
    DEFAULT_RETRY,
    DeliveryOutcome,
    DeliverySession,
    DeliveryTimeoutError,
    RetryPolicy,
    TransientSendError,
    Transport,
    utc_now,
)
from delivery_registry import (
    EdgePackage,
    RegistryError,
    check_approval,
    fetch_package,
    record_failure,
    record_success,
    resolve_version,
    validate_environment,
)
from delivery_transports import IoTHubTransport, MqttTransport, TransportError

logger = logging.getLogger("deliver_package")

TRANSPORTS = ("mqtt", "iothub")
# IoT Hub device ids: up to 128 ASCII letters, digits and -.%_*?!(),:=@$'
DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}$")
# A day: longer than any package download, and short enough to end a step
# whose device never replies.
MAX_TIMEOUT_SECONDS = 24 * 3600
TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")


class DeliveryError(RuntimeError):
    """The delivery failed; the message states why and what to do next."""


@dataclass(frozen=True)
class DeliveryRequest:
    package_name: str
    device_id: str
    project_id: str
    package_version: str = "latest"
    environment: str = "dev"
    require_approval: bool = True
    transport: str = "mqtt"
    timeout_seconds: float = 300.0
    blob_container: str = "edge-packages"
    sas_expiry_minutes: int = 15

    def validate(self) -> None:
        validate_environment(self.environment)
        validate_container(self.blob_container)
        validate_sas_expiry(self.sas_expiry_minutes)
        if not DEVICE_ID_PATTERN.match(self.device_id):
            raise DeliveryError(
                f"device_id {self.device_id!r} is invalid: IoT Hub accepts 1 to 128 "
                "ASCII letters, digits and the characters -.%_*?!(),:=@$' only."
            )
        if not self.project_id.strip():
            raise DeliveryError(
                "project_id is empty; give the AI Model Manager project id."
            )
        if self.transport not in TRANSPORTS:
            raise DeliveryError(
                f"transport {self.transport!r} is invalid: use one of {', '.join(TRANSPORTS)}."
            )
        if not 0 < self.timeout_seconds <= MAX_TIMEOUT_SECONDS:
            raise DeliveryError(
                f"timeout_seconds {self.timeout_seconds} is invalid: give a number of "
                f"seconds above 0 and at most {MAX_TIMEOUT_SECONDS} (one day)."
            )
        if self.package_version != "latest" and not self.package_version.isdigit():
            raise DeliveryError(
                f"package_version {self.package_version!r} is invalid: give a version "
                "number such as 3, or 'latest'."
            )


def parse_bool(text: str) -> bool:
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean: use True or False")


def transport_factory(kind: str) -> Callable[[], Transport]:
    """Read the transport's settings now and return a function that connects it.

    Reading them before the upload makes a missing connection string fail the
    step before anything is uploaded.
    """
    if kind == "mqtt":
        broker = mqtt_settings()
        return lambda: MqttTransport(
            broker["host"],
            int(broker["port"]),
            ca_cert=broker["ca_cert"],
            client_cert=broker["client_cert"],
            client_key=broker["client_key"],
        ).connect()
    service, events, consumer_group = iothub_connection_strings()
    return lambda: IoTHubTransport(service, events, consumer_group=consumer_group)


def outcome_record(
    outcome: DeliveryOutcome, request: DeliveryRequest, state: str
) -> dict:
    return {
        "delivery_id": outcome.delivery_id,
        "device_id": request.device_id,
        "environment": request.environment,
        "project_id": request.project_id,
        "transport": request.transport,
        "state": state,
        "reason": outcome.reason,
        "time": outcome.finished_at or utc_now(),
    }


def build_report(
    request: DeliveryRequest,
    package: EdgePackage,
    blob: UploadedBlob,
    outcome: DeliveryOutcome,
    status: str,
    error: str | None,
    tags: dict[str, str],
) -> dict:
    return {
        "status": status,
        "error": error,
        "delivery_id": outcome.delivery_id,
        "device_id": request.device_id,
        "project_id": request.project_id,
        "environment": request.environment,
        "transport": request.transport,
        "package": {
            "name": package.name,
            "version": package.version,
            "package_id": package.package_id,
            "package_version": package.package_version,
            "file": package.zip_path.name,
            "size_bytes": package.zip_path.stat().st_size,
            "sha256": package.sha256,
        },
        "blob": {
            "container": blob.container,
            "name": blob.name,
            "url": redact_url(blob.url),
            "uploaded": blob.uploaded,
            "sas_expiry_minutes": request.sas_expiry_minutes,
        },
        "final_state": outcome.final_state,
        "reason": outcome.reason,
        "states": [asdict(event) for event in outcome.states],
        "presigned_url_requests": outcome.url_requests,
        "ignored_messages": outcome.ignored_messages,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "seconds": outcome.seconds,
        "tags_written": sorted(tags),
    }


def render_markdown(report: dict) -> str:
    package, blob = report["package"], report["blob"]
    lines = [
        f"# Delivery {report['delivery_id']}",
        "",
        (
            f"**Status: {report['status']}** - final state "
            f"{report['final_state'] or 'none'} after {report['seconds']} s."
        ),
        "",
    ]
    if report["error"]:
        lines += [f"Error: {report['error']}", ""]
    lines += [
        "| | |",
        "|---|---|",
        (
            f"| Package | {package['name']} version {package['version']} "
            f"({package['package_id']} {package['package_version']}) |"
        ),
        f"| File | {package['file']}, {package['size_bytes']} bytes |",
        f"| SHA-256 | `{package['sha256']}` |",
        f"| Device | {report['device_id']} (project {report['project_id']}) |",
        f"| Environment | {report['environment']} |",
        f"| Transport | {report['transport']} |",
        f"| Blob | {blob['url']} ({'uploaded' if blob['uploaded'] else 'already present'}) |",
        f"| URL requests | {report['presigned_url_requests']} |",
        f"| Ignored messages of other deliveries | {report['ignored_messages']} |",
        f"| Tags written | {', '.join(report['tags_written']) or 'none'} |",
        "",
        "## States reported by the device",
        "",
        "| Time (UTC) | State | Reason |",
        "|---|---|---|",
    ]
    lines += [
        f"| {event['received_at']} | {event['state']} | {event['reason'] or ''} |"
        for event in report["states"]
    ] or ["| | (none) | |"]
    return "\n".join(lines) + "\n"


def write_report(folder: Path, report: dict) -> None:
    """Write report.json and report.md, each through a temporary file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("report.json", json.dumps(report, indent=2) + "\n"),
        ("report.md", render_markdown(report)),
    ):
        tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(text)
        os.replace(tmp, folder / name)


def run_protocol(
    session: DeliverySession, package: EdgePackage, timeout: float
) -> tuple[DeliveryOutcome, str | None]:
    try:
        outcome = session.run(package.package_id, package.package_version, timeout)
    except DeliveryTimeoutError as exc:
        return exc.outcome, str(exc)
    except (TransientSendError, TransportError) as exc:
        session.outcome.finished_at = utc_now()
        return session.outcome, str(exc)
    if outcome.succeeded:
        return outcome, None
    return outcome, (
        f"Device {outcome.device_id} reported Error for delivery "
        f"{outcome.delivery_id}: {outcome.reason or 'no reason given'}. "
        "Check AI Model Manager's log on the device."
    )


def deliver(
    request: DeliveryRequest,
    report_dir: Path,
    *,
    client=None,
    transport: Transport | None = None,
    storage_connection: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> dict:
    """Deliver the package and return the report.

    Raises RegistryError, BlobError, CredentialError or TransportError before
    the protocol starts (nothing is tagged), and DeliveryError when the device
    reports Error, the delivery times out or sending fails (the report is
    written and ``last_delivery_attempt`` is tagged).

    ``client`` (MlflowClient), ``transport`` and ``storage_connection`` default
    to what the environment configures; tests pass their own.
    """
    from mlflow import MlflowClient

    request.validate()
    client = client or MlflowClient()
    logger.info(
        "Step 1 of 5: resolving %s version %s",
        request.package_name,
        request.package_version,
    )
    model_version = resolve_version(
        client, request.package_name, request.package_version
    )
    approval = check_approval(
        model_version, request.environment, request.require_approval
    )
    if approval:
        logger.info("Approved for %s: %s", request.environment, approval)
    storage_connection = storage_connection or storage_connection_string()
    connect_transport = None if transport else transport_factory(request.transport)
    with tempfile.TemporaryDirectory(prefix="deliver-package-") as tmp:
        logger.info(
            "Step 2 of 5: downloading and verifying version %s", model_version.version
        )
        package = fetch_package(client, model_version, Path(tmp))
        logger.info(
            "Step 3 of 5: uploading to blob container %s", request.blob_container
        )
        service = service_client(storage_connection)
        key = account_key(service)
        blob = upload_package(
            service,
            request.blob_container,
            f"{package.name}/{package.version}/{package.zip_path.name}",
            package.zip_path,
            package.sha256,
            {
                "package_id": package.package_id,
                "package_version": package.package_version,
            },
        )
        logger.info(
            "Step 4 of 5: delivering to device %s over %s",
            request.device_id,
            request.transport,
        )
        transport = transport or connect_transport()
        with transport:
            session = DeliverySession(
                transport,
                device_id=request.device_id,
                project_id=request.project_id,
                presigned_url=lambda: read_sas_url(
                    blob, key, request.sas_expiry_minutes
                ),
                retry=retry,
            )
            outcome, error = run_protocol(session, package, request.timeout_seconds)
        logger.info("Step 5 of 5: recording the outcome")
        if error is None:
            record = outcome_record(outcome, request, outcome.final_state)
            tags = record_success(
                client, package, request.environment, request.device_id, record
            )
            report = build_report(
                request, package, blob, outcome, "succeeded", None, tags
            )
        else:
            record = outcome_record(outcome, request, outcome.final_state or "Timeout")
            record["error"] = error
            tags = record_failure(client, package, record)
            report = build_report(
                request, package, blob, outcome, "failed", error, tags
            )
        write_report(report_dir, report)
    logger.info("Report written to %s", report_dir)
    if error is not None:
        raise DeliveryError(error)
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-name", required=True)
    parser.add_argument("--package-version", default="latest")
    parser.add_argument("--environment", default="dev")
    parser.add_argument("--require-approval", type=parse_bool, default=True)
    parser.add_argument("--device-id", required=True)
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--transport", choices=TRANSPORTS, default="mqtt")
    parser.add_argument("--timeout-seconds", type=float, default=300.0)
    parser.add_argument("--blob-container", default="edge-packages")
    parser.add_argument("--sas-expiry-minutes", type=int, default=15)
    parser.add_argument("--delivery-report", type=Path, required=True)
    return parser.parse_args(argv)


def log_to_mlflow_run(
    request: DeliveryRequest, report: dict | None, report_dir: Path
) -> None:
    """Log parameters, duration and the report to the step's MLflow run (Azure ML sets one)."""
    import mlflow

    with mlflow.start_run():
        mlflow.log_params(
            {
                "package_name": request.package_name,
                "package_version": request.package_version,
                "environment": request.environment,
                "device_id": request.device_id,
                "transport": request.transport,
            }
        )
        if report is not None:
            mlflow.log_metric("delivery_seconds", report["seconds"])
            mlflow.set_tag("delivery_id", report["delivery_id"])
        if report_dir.is_dir() and any(report_dir.iterdir()):
            mlflow.log_artifacts(str(report_dir), "delivery_report")


def configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # MLflow's download progress bar fills the step log with carriage returns.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # The Azure SDKs log request URLs and headers at INFO; SAS tokens must not leak.
    for noisy in ("azure", "uamqp", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def request_from_args(args: argparse.Namespace) -> DeliveryRequest:
    return DeliveryRequest(
        package_name=args.package_name,
        package_version=args.package_version,
        environment=args.environment,
        require_approval=args.require_approval,
        device_id=args.device_id,
        project_id=args.project_id,
        transport=args.transport,
        timeout_seconds=args.timeout_seconds,
        blob_container=args.blob_container,
        sas_expiry_minutes=args.sas_expiry_minutes,
    )


@contextlib.contextmanager
def exit_on_sigterm():
    """Turn SIGTERM into SystemExit, so that the package copy is removed.

    The local runner stops a cancelled step with SIGTERM, which by default ends
    Python without running ``finally`` blocks.
    """

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    request = request_from_args(args)

    report, failed = None, False
    try:
        with exit_on_sigterm():
            report = deliver(request, args.delivery_report)
    except (
        DeliveryError,
        RegistryError,
        BlobError,
        CredentialError,
        TransportError,
    ) as exc:
        failed = True
        logger.error("%s", exc)
    if os.environ.get("MLFLOW_RUN_ID"):
        log_to_mlflow_run(request, report, args.delivery_report)
    if failed:
        return 1

    logger.info(
        "Delivered %s version %s to device %s: %s",
        request.package_name,
        report["package"]["version"],
        request.device_id,
        report["final_state"],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
