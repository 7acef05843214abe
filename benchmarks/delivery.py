"""Time a delivery to the simulated AI Model Manager on the local stack.

Starts Mosquitto (127.0.0.1:8883, which must be free) and Azurite in a
temporary state folder, provisions one simulated device and measures:

- protocol: newDelivery -> Success with a 1 KB package (the transfer is
  negligible, so this is the message exchange itself);
- transfer: upload of a package of ``--size-mb`` MB (incompressible) to
  Azurite, then newDelivery -> Success, which includes the device's download
  through the SAS URL and its SHA-256 and zip checks;
- step: the whole ``deliver()`` of the component once per size, with the
  MLflow registry download and SHA-256 check.

    .venv/bin/python benchmarks/delivery.py [--runs 5] [--size-mb 60]

Prints a Markdown table (median, min, max seconds) and the machine it ran on.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

from plant2edge import settings
from plant2edge.localstack import start_stack

sys.path.insert(0, str(settings.repo_root() / "components" / "deliver_package"))

from deliver_package import DeliveryRequest, deliver
from delivery_blob import (
    account_key,
    read_sas_url,
    service_client,
    upload_package,
)
from delivery_protocol import DeliverySession
from delivery_transports import MqttTransport

PIPELINE_CONFIG = "dataFlowPipelineInfo:\n  projectName: bench\n  packageId: {id}\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def build_zip(path: Path, size_bytes: int) -> str:
    """Write a zip with pipeline_config.yml and random bytes; return its SHA-256."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pipeline_config.yml", PIPELINE_CONFIG.format(id=uuid.uuid4()))
        if size_bytes:
            archive.writestr(
                "payload.bin", os.urandom(size_bytes), compress_type=zipfile.ZIP_STORED
            )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_delivery(stack, device_id: str, path: Path, sha256: str) -> tuple[float, float]:
    """Upload ``path`` under a new blob name and deliver it; return both durations."""
    service = service_client(stack.blob.connection_string)
    key = account_key(service)
    start = time.perf_counter()
    blob = upload_package(
        service, "bench", f"{uuid.uuid4()}/{path.name}", path, sha256, {}
    )
    uploaded = time.perf_counter()
    transport = MqttTransport(
        stack.mqtt.host,
        stack.mqtt.port,
        ca_cert=str(stack.mqtt.ca_cert),
        client_cert=str(stack.mqtt.client_cert),
        client_key=str(stack.mqtt.client_key),
    ).connect()
    with transport:
        session = DeliverySession(
            transport,
            device_id=device_id,
            project_id="bench",
            presigned_url=lambda: read_sas_url(blob, key, 15),
        )
        outcome = session.run("bench", "1", timeout_seconds=120)
    if not outcome.succeeded:
        raise SystemExit(f"Delivery failed: {outcome.final_state} {outcome.reason}")
    return uploaded - start, outcome.seconds


def register(home: Path, size_bytes: int):
    """Register a fake edge package in a fresh MLflow store under ``home``."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    name = f"bench{size_bytes}_edge"
    experiment = client.get_experiment_by_name("bench") or client.get_experiment(
        client.create_experiment(
            "bench", artifact_location=str(home / "mlartifacts" / "bench")
        )
    )
    folder = home / "build" / name
    folder.mkdir(parents=True)
    zip_path = folder / f"{name}.zip"
    sha = build_zip(zip_path, size_bytes)
    (folder / f"{zip_path.name}.sha256").write_text(f"{sha}  {zip_path.name}\n")
    (folder / "package.json").write_text(
        '{"package_id": "bench", "package_version": "1"}'
    )
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_artifacts(str(folder), "edge_package")
    client.create_registered_model(name)
    client.create_model_version(
        name, f"{run.info.artifact_uri}/edge_package", run_id=run.info.run_id
    )
    return name


def row(label: str, values: list[float]) -> str:
    return (
        f"| {label} | {len(values)} | {statistics.median(values):.3f} | "
        f"{min(values):.3f} | {max(values):.3f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="deliveries per size")
    parser.add_argument(
        "--size-mb", type=float, default=60.0, help="large package size"
    )
    args = parser.parse_args(argv)
    large_bytes = int(args.size_mb * 1e6)
    work = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    os.environ["PLANT2EDGE_HOME"] = str(work / "home")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'home' / 'mlflow.db'}"
    os.environ["PLANT2EDGE_LOCALSTACK_DIR"] = str(work / "stack")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    (work / "home").mkdir()
    small, large = work / "small.zip", work / "large.zip"
    small_sha, large_sha = build_zip(small, 1000), build_zip(large, large_bytes)
    rows = []
    try:
        with start_stack(work / "stack") as stack:
            device = stack.start_device(stack.provision_device("bench-device"))
            one_delivery(stack, device.device_id, small, small_sha)  # warm-up
            protocol = [
                one_delivery(stack, device.device_id, small, small_sha)[1]
                for _ in range(args.runs)
            ]
            uploads, trips = zip(
                *(
                    one_delivery(stack, device.device_id, large, large_sha)
                    for _ in range(args.runs)
                ),
                strict=True,
            )
            steps = {}
            for label, size in (("1 KB", 1000), (f"{args.size_mb:g} MB", large_bytes)):
                name = register(work / "home", size)
                request = DeliveryRequest(
                    name, device.device_id, "bench", require_approval=False
                )
                start = time.perf_counter()
                deliver(request, work / f"report-{size}")
                steps[label] = time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows.append(row("protocol: newDelivery -> Success, 1 KB package", protocol))
    rows.append(row(f"upload of {args.size_mb:g} MB to Azurite", list(uploads)))
    rows.append(
        row(f"newDelivery -> Success with {args.size_mb:g} MB download", list(trips))
    )
    totals = [u + t for u, t in zip(uploads, trips, strict=True)]
    rows.append(row(f"upload + delivery of {args.size_mb:g} MB", totals))
    for label, seconds in steps.items():
        rows.append(row(f"deliver() step with registry, {label}", [seconds]))
    print(f"Delivery on the local stack ({machine()})\n")
    print("| Measurement | Runs | Median s | Min s | Max s |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
