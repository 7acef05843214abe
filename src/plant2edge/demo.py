"""Run every pipeline on this machine, from raw data to a model on the edge.

``plant2edge demo --data URL_OR_PATH`` runs, through the local runner and
against the local stand-ins, the same pipeline YAML that Azure ML runs:

1. ``pipelines/data_asset.yaml``: ingest, validate, profile, register the data.
2. ``pipelines/training.yaml``: train, evaluate, register the model.
3. ``pipelines/packaging.yaml``: build, validate, register the edge package.
4. ``pipelines/delivery.yaml``: deliver it to the simulated AI Model Manager.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from plant2edge import settings

logger = logging.getLogger(__name__)

PUBLIC_SAMPLE_URL = (
    "https://github.com/siemens/simatic-ai-launcher/raw/master/datasets/"
    "state-identifier/si-sample.parquet"
)
DOWNLOAD_TIMEOUT_S = 60
DEMO_DEVICE_ID = "ai-model-manager-demo"
DEMO_ENVIRONMENT = "dev"


class DemoError(RuntimeError):
    """A demo stage failed. The message names the cause and the next command."""


@dataclass
class Summary:
    """Summary lines printed at the end of the demo, added stage by stage."""

    lines: list[str] = field(default_factory=list)

    def add(self, label: str, value: object) -> None:
        self.lines.append(f"  {label:<22} {value}")


def fetch_data(source: str) -> Path:
    """Return a local path for ``source``, downloading a URL once into the cache."""
    if not source.startswith(("http://", "https://")):
        path = Path(source).expanduser().resolve()
        if not path.is_file():
            raise DemoError(
                f"Data file not found: {path}. Pass an existing parquet or CSV "
                "file with DATA=path/to/file.parquet."
            )
        return path

    name = Path(urllib.parse.urlparse(source).path).name or "data"
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    target = settings.cache_dir() / "downloads" / digest / name
    if target.is_file():
        logger.info("Using cached download %s", target)
        return target

    import requests

    logger.info("Downloading %s", source)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    try:
        with requests.get(source, stream=True, timeout=DOWNLOAD_TIMEOUT_S) as response:
            response.raise_for_status()
            with open(partial, "wb") as out:
                out.writelines(response.iter_content(chunk_size=1 << 20))
    except requests.RequestException as exc:
        partial.unlink(missing_ok=True)
        raise DemoError(
            f"Download of {source} failed: {exc}. Without internet access, pass a "
            "local copy: make demo DATA=path/to/si-sample.parquet"
        ) from exc
    os.replace(partial, target)
    return target


def run_stage(number: int, total: int, pipeline: str, overrides: dict[str, str]):
    """Run ``pipelines/<pipeline>.yaml`` and return its result, or raise DemoError."""
    from plant2edge.runner import run_pipeline

    path = settings.repo_root() / "pipelines" / f"{pipeline}.yaml"
    logger.info("Stage %d of %d: %s pipeline", number, total, pipeline)
    started = time.monotonic()
    # Step output stays in the run folder logs; the console shows progress only.
    result = run_pipeline(path, overrides=overrides, stream_logs=False)
    if not result.succeeded:
        sets = " ".join(f"--set {key}={value}" for key, value in overrides.items())
        raise DemoError(
            f"The {pipeline} pipeline failed at step {result.failed_step!r}.\n"
            f"{result.error or ''}\n"
            f"Logs: {result.run_dir}\n"
            f"Rerun this stage alone: plant2edge run {path} {sets}".rstrip()
        )
    logger.info(
        "Stage %d of %d: %s pipeline finished in %.1f s",
        number,
        total,
        pipeline,
        time.monotonic() - started,
    )
    return result


def read_json(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def run_demo(data: str, asset_name: str, model_name: str, deliver: bool) -> Summary:
    summary = Summary()
    total = 4 if deliver else 3
    local_data = fetch_data(data)

    result = run_stage(
        1,
        total,
        "data_asset",
        {"inputs.raw_data": str(local_data), "inputs.asset_name": asset_name},
    )
    asset = read_json(result.outputs["asset_info"], "asset.json")
    reused = "" if asset["created"] else " (unchanged data: existing version reused)"
    summary.add("data asset", f"{asset['name']}:{asset['version']}{reused}")
    summary.add("data report", result.outputs["profile_report"] / "report.html")

    result = run_stage(
        2,
        total,
        "training",
        {
            "inputs.data": f"azureml:{asset_name}:{asset['version']}",
            "inputs.model_name": model_name,
        },
    )
    registration = read_json(result.outputs["registration"], "registration.json")
    metrics = registration["metrics"]
    if registration["registered"]:
        summary.add("model", f"{model_name} version {registration['version']}")
    else:
        summary.add("model", f"not registered: {registration['reason']}")
    summary.add("metrics", _format_metrics(metrics))
    summary.add("evaluation plots", result.outputs["plots"])

    packaged = _registered_edge_version(model_name)
    if packaged is None:
        result = run_stage(3, total, "packaging", {"inputs.model_name": model_name})
        summary.lines.extend(_packaging_summary(result))
    else:
        logger.info(
            "Stage 3 of %d: skipped, the latest model version is already packaged "
            "as %s_edge version %s",
            total,
            model_name,
            packaged,
        )
        summary.add("edge package", f"{model_name}_edge version {packaged} (reused)")

    if deliver:
        summary.lines.extend(_deliver(4, total, model_name))
    return summary


def _registered_edge_version(model_name: str) -> str | None:
    """Return the ``<model>_edge`` version that packages the latest model version."""
    import mlflow

    client = mlflow.MlflowClient(settings.tracking_uri(), settings.registry_uri())
    models = client.search_model_versions(f"name='{model_name}'")
    if not models:
        return None
    latest = str(max(int(version.version) for version in models))
    for package in client.search_model_versions(f"name='{model_name}_edge'"):
        if (package.tags or {}).get("model_version") == latest:
            return str(package.version)
    return None


def _format_metrics(metrics: dict) -> str:
    keys = (
        "adjusted_rand_lag_corrected",
        "adjusted_rand_plain",
        "accuracy_lag_corrected",
        "silhouette",
        "davies_bouldin",
    )
    return ", ".join(f"{key} {metrics[key]:.3f}" for key in keys if key in metrics)


def _packaging_summary(result) -> list[str]:
    package_dir = result.outputs["package"]
    package = read_json(package_dir, "package.json")
    validation = read_json(result.outputs["validation"], "validation.json")
    edge_zip = package_dir / package["edge_package"]
    size_mb = edge_zip.stat().st_size / 1e6
    verdict = "passed" if validation["passed"] else "FAILED"
    version = package["package_version"]
    checked = f"{validation['n_outputs']} states of {validation['n_windows']} windows"
    report = result.outputs["validation"] / "report.html"
    return [
        f"  {'edge package':<22} {edge_zip}",
        f"  {'edge package size':<22} {size_mb:.1f} MB",
        f"  {'edge package version':<22} {version} (id {package['package_id']})",
        f"  {'validation':<22} {verdict}: {checked} equal the model's predictions",
        f"  {'validation report':<22} {report}",
    ]


def _deliver(number: int, total: int, model_name: str) -> list[str]:
    """Start the local stand-ins, approve the package and deliver it."""
    import mlflow

    from plant2edge.approve import approve
    from plant2edge.localstack import start_stack

    package_name = f"{model_name}_edge"
    client = mlflow.MlflowClient(settings.tracking_uri(), settings.registry_uri())
    version, _ = approve(client, package_name, "latest", DEMO_ENVIRONMENT, "demo")
    logger.info(
        "Approved %s version %s for %s", package_name, version, DEMO_ENVIRONMENT
    )

    with start_stack(settings.home() / "localstack") as stack:
        connection_file = stack.provision_device(DEMO_DEVICE_ID, force=True)
        device = stack.start_device(connection_file)
        logger.info("Simulated AI Model Manager %s is listening", DEMO_DEVICE_ID)
        result = run_stage(
            number,
            total,
            "delivery",
            {
                "inputs.transport": "mqtt",
                "inputs.package_name": package_name,
                "inputs.package_version": version,
                "inputs.environment": DEMO_ENVIRONMENT,
                "inputs.device_id": DEMO_DEVICE_ID,
            },
        )
        device.stop()
    report = read_json(result.outputs["delivery_report"], "report.json")
    state = (
        f"{report['final_state']} on {report['device_id']} in {report['seconds']} s "
        f"(delivery {report['delivery_id']})"
    )
    report_path = result.outputs["delivery_report"] / "report.md"
    return [f"  {'delivery':<22} {state}", f"  {'delivery report':<22} {report_path}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="plant2edge demo",
        description="Run the data asset, training, packaging and delivery "
        "pipelines on this machine, from raw data to the simulated edge device.",
    )
    parser.add_argument(
        "--data",
        default=PUBLIC_SAMPLE_URL,
        help="parquet or CSV file: an https URL (downloaded once and cached) "
        "or a local path (default: the public Siemens sample file)",
    )
    parser.add_argument(
        "--asset-name",
        default="state-identifier-data",
        help="name of the data asset to register (default: %(default)s)",
    )
    parser.add_argument(
        "--model-name",
        default="state-identifier",
        help="name of the model to register; the edge package is <name>_edge "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--no-delivery",
        action="store_true",
        help="stop after packaging; do not start the local IoT Hub stand-ins",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    started = time.monotonic()
    try:
        summary = run_demo(
            args.data, args.asset_name, args.model_name, not args.no_delivery
        )
    except DemoError as exc:
        print(f"\nDemo failed: {exc}", file=sys.stderr)
        return 1
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s")
    print("\n".join(summary.lines))
    return 0
