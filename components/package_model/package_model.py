"""Package a registered state identifier model for Siemens AI Inference Server.

Loads the model version from the MLflow registry, builds a one-component AI SDK
pipeline around it and writes into the ``package`` output folder:

    package.json                            what was built, sizes, requirements
    edge/<model>-edge_<v>.zip(.sha256)      edge configuration package
    delta/<model>-edge_delta_<v>.zip(...)   delta against the previous edge version
    config/<model>_<v>.zip                  pipeline configuration package
    reports/<model>_<v>_package_report.md   the AI SDK's package report
    sample_payload.json                     input rows from ``--data`` (optional)

The package version equals the model version. The package id is taken from the
latest registered ``<model>_edge`` version, and the first package gets a new UUID.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import edge_pipeline
import edge_registry
import model_source
import sample_rows
import simaticai.deployment  # noqa: F401  (replaces root log handlers on import)
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

PACKAGE_JSON = "package.json"


def find_wheel_dir(explicit: str | None = None) -> Path | None:
    """Return the local wheel folder for offline exports, or None to use the index.

    Order: ``explicit``, ``$PLANT2EDGE_WHEELS``, ``$PLANT2EDGE_HOME/cache/wheels``
    when it exists (the local runner sets PLANT2EDGE_HOME).
    """
    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise FileNotFoundError(
                f"Wheel folder {path} does not exist. Run scripts/fetch-wheels.py "
                "--dest DIR first, or leave the option out to use the package index."
            )
        return path.resolve()
    if os.environ.get("PLANT2EDGE_WHEELS"):
        return find_wheel_dir(os.environ["PLANT2EDGE_WHEELS"])
    home = os.environ.get("PLANT2EDGE_HOME")
    if home and (Path(home) / "cache" / "wheels").is_dir():
        return (Path(home) / "cache" / "wheels").resolve()
    return None


def build_package(
    model_name: str,
    model_version: str,
    output_dir: Path,
    data_dir: Path | None = None,
    wheel_dir: Path | None = None,
    batch_input: bool = False,
) -> dict:
    """Build the packages of one model version into ``output_dir``; return package.json."""
    started = time.perf_counter()
    model_source.check_version_text(model_version)
    output_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".package-", dir=output_dir))
    try:
        inputs = _read_registry(model_name, model_version, work)
        with edge_pipeline.sdk_environment(work / "tmp", wheel_dir):
            info = _build(inputs, work, data_dir, batch_input, wheel_dir)
        _publish(work / "out", output_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info(
        "Packaged %s version %s in %.1f s into %s",
        model_name,
        info["package_version"],
        time.perf_counter() - started,
        output_dir,
    )
    return info


def _read_registry(model_name: str, model_version: str, work: Path) -> dict:
    """Download the model and the previous edge package; pick the package id."""
    logger.info("Step 1 of 5: reading model %s version %s", model_name, model_version)
    source = model_source.download(model_name, model_version, work / "model")
    pipeline_object = model_source.load_pipeline(source)
    client = MlflowClient()
    edge_name = edge_registry.edge_model_name(model_name)
    previous = edge_registry.previous_version(client, edge_name, int(source.version))
    previous_zip = None
    if previous is not None:
        previous_zip = edge_registry.download_package(previous, work / "previous")
    return {
        "source": source,
        "pipeline": pipeline_object,
        "signals": model_source.signal_columns(source, pipeline_object),
        "package_id": edge_registry.package_id(client, edge_name),
        "previous": previous,
        "previous_zip": previous_zip,
    }


def _build(
    inputs: dict,
    work: Path,
    data_dir: Path | None,
    batch_input: bool,
    wheel_dir: Path | None,
) -> dict:
    source, signals = inputs["source"], inputs["signals"]
    package_id, version = inputs["package_id"], source.version
    out = work / "out"
    out.mkdir()

    logger.info("Step 2 of 5: staging the component (signals %s)", signals)
    component_dir = work / "component"
    config = edge_pipeline.stage_component(
        source, inputs["pipeline"], signals, component_dir
    )
    pins = edge_pipeline.write_requirements(source, component_dir)
    if wheel_dir is not None:
        edge_pipeline.check_wheel_cache(wheel_dir, pins)
    if data_dir is not None:
        payload = sample_rows.sample_payload(data_dir, source, signals)
        sample_rows.check_entrypoint(component_dir, payload, inputs["pipeline"], source)
        (out / "sample_payload.json").write_text(json.dumps(payload) + "\n")

    def new_pipeline():
        return edge_pipeline.build_pipeline(source, component_dir, config, batch_input)

    logger.info("Step 3 of 5: exporting the edge package (package id %s)", package_id)
    edge_zip = edge_pipeline.export_edge_package(
        new_pipeline(), out / "edge", package_id, version
    )
    _move_reports(out / "edge", out / "reports")

    logger.info("Step 4 of 5: delta package")
    delta_zip = None
    if inputs["previous_zip"] is not None:
        delta_zip = edge_pipeline.export_delta_package(
            new_pipeline(), work / "delta", package_id, version, inputs["previous_zip"]
        )
    if delta_zip is not None:
        (out / "delta").mkdir()
        for path in (delta_zip, edge_pipeline.checksum_path(delta_zip)):
            shutil.move(path, out / "delta" / path.name)
        delta_zip = out / "delta" / delta_zip.name
    elif inputs["previous"] is None:
        logger.info("No earlier edge package of %s: no delta package", source.name)

    logger.info("Step 5 of 5: saving the pipeline configuration package")
    config_zip = edge_pipeline.save_config_package(
        new_pipeline(), out / "config", package_id, version
    )
    sizes = edge_pipeline.footprint(edge_zip)
    info = {
        "package_id": str(package_id),
        "package_version": version,
        "model_name": source.name,
        "model_version": version,
        "model_uri": source.uri,
        "data_asset": source.data_asset,
        "validation": None,
        "edge_package": str(edge_zip.relative_to(out)),
        "edge_package_sha256": edge_pipeline.sha256_of(edge_zip),
        "delta_package": str(delta_zip.relative_to(out)) if delta_zip else None,
        "delta_origin_version": str(inputs["previous"].version) if delta_zip else None,
        "config_package": str(config_zip.relative_to(out)),
        "inputs": config["inputs"],
        "output": config["output"],
        "metrics": config["metrics"],
        "parameters": {edge_pipeline.STEP_PARAMETER: source.step},
        "window_size": source.window_size,
        "step": source.step,
        "batch_input": batch_input,
        "python_version": edge_pipeline.TARGET_PYTHON,
        "requirements": pins,
        "footprint": sizes,
    }
    (out / PACKAGE_JSON).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "Edge package %s: %.1f MB, of which wheels %.1f MB and model with code %.1f kB",
        edge_zip.name,
        sizes["edge_package_bytes"] / 1e6,
        sizes["python_packages_bytes"] / 1e6,
        sizes["model_and_code_bytes"] / 1e3,
    )
    return info


def _move_reports(source_dir: Path, reports_dir: Path) -> None:
    reports_dir.mkdir(exist_ok=True)
    for report in source_dir.glob("*_package_report.md"):
        shutil.move(report, reports_dir / report.name)


def _publish(built: Path, output_dir: Path) -> None:
    """Move each built entry into ``output_dir`` with a rename (same file system)."""
    for entry in sorted(built.iterdir()):
        target = output_dir / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-name", required=True, help="registered model name")
    parser.add_argument(
        "--model-version",
        default="latest",
        help="registered version number, or 'latest' (default)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data asset folder; its last rows become sample_payload.json and a "
        "smoke test of the entrypoint",
    )
    parser.add_argument("--package", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--wheels",
        default=None,
        help="folder of target-platform wheels for an offline export "
        "(default: $PLANT2EDGE_WHEELS or $PLANT2EDGE_HOME/cache/wheels if present)",
    )
    parser.add_argument(
        "--batch-input",
        default="False",
        choices=["True", "False"],
        help="declare batch input: AI Inference Server then passes lists of rows",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    edge_pipeline.quiet_sdk_loggers()
    try:
        build_package(
            args.model_name,
            args.model_version,
            args.package,
            args.data,
            find_wheel_dir(args.wheels),
            args.batch_input == "True",
        )
    except (
        LookupError,
        ValueError,
        TypeError,
        FileNotFoundError,
        edge_pipeline.ExportError,
    ) as exc:
        logger.error("Packaging failed: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
