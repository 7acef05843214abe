"""Validate an edge package against its registered model on held-out real rows.

Runs the edge package in the AI SDK's LocalPipelineRunner on the last
``n_rows`` rows of the data asset. The rows go in as one list, because the
runner starts a new interpreter per call and windows must see all rows. Checks:

- the states equal the registered model's own predictions on the same rows,
  window by window, and as many windows come back as the model predicts;
- every output contains exactly its declared variables with their declared types
  (the runner itself checks only String and Object);
- every metric is JSON like ``{"value": 1.5}``.

Writes ``validation.json``, ``report.html`` and ``predictions.png`` into the
``validation`` output folder and exits with status 1 when a check fails.
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
import zipfile
from pathlib import Path

import edge_run
import output_checks as checks
import simaticai.testing.pipeline_runner  # noqa: F401  (replaces root log handlers)
import validation_inputs as inputs
import validation_report as report
import yaml

logger = logging.getLogger(__name__)

DEFAULT_WINDOWS = 20


class ValidationFailed(Exception):
    """A check failed. ``result`` is the full validation result."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


def read_pipeline_config(edge_zip: Path) -> dict:
    """Return the declared inputs, outputs, metrics, parameters and batch setting."""
    with zipfile.ZipFile(edge_zip) as package:
        config = yaml.safe_load(package.read("pipeline_config.yml"))
    flow = config["dataFlowPipeline"]
    component = flow["components"][0]
    outputs = {
        o["name"]: o["type"] for o in flow["pipelineOutputs"] if not o.get("metric")
    }
    metrics = [o["name"] for o in flow["pipelineOutputs"] if o.get("metric")]
    return {
        "inputs": {i["name"]: i["type"] for i in flow["pipelineInputs"]},
        "outputs": outputs,
        "metrics": metrics,
        "parameters": {
            p["name"]: p["defaultValue"] for p in flow.get("pipelineParameters", [])
        },
        "batch_input": component.get("batch", {}).get("inputBatch") == "Yes",
        "package_id": config["dataFlowPipelineInfo"]["packageId"],
        "package_version": str(
            config["dataFlowPipelineInfo"]["dataFlowPipelineVersion"]
        ),
    }


def validate(
    package_dir: Path,
    model_name: str,
    model_version: str,
    data_dir: Path,
    out_dir: Path,
    n_rows: int | None = None,
    wheel_dir: Path | None = None,
) -> dict:
    """Validate the package in ``package_dir``; write the results into ``out_dir``.

    Returns the result dict; raises ValidationFailed when a check fails (after
    writing the results) and ValueError/LookupError for unusable inputs.
    """
    started = time.perf_counter()
    info, edge_zip = inputs.read_package(package_dir)
    version = inputs.check_model(info, model_name, model_version)
    declared = read_pipeline_config(edge_zip)
    if declared["package_id"] != info["package_id"]:
        raise ValueError(
            f"{edge_zip.name} has package id {declared['package_id']}, but package.json "
            f"says {info['package_id']}. Rebuild the package with package_model."
        )
    window_size, step = (
        int(info["window_size"]),
        int(declared["parameters"].get("window_step", info["step"])),
    )
    n_rows = n_rows or window_size + (DEFAULT_WINDOWS - 1) * step
    logger.info("Step 1 of 4: reading the last %d rows of %s", n_rows, data_dir)
    frame = inputs.held_out_rows(
        data_dir, n_rows, list(declared["inputs"]), window_size
    )
    payload = inputs.payload(frame, declared["inputs"])

    logger.info("Step 2 of 4: predicting with models:/%s/%s", model_name, version)
    expected = inputs.model_predictions(
        model_name, version, frame, list(declared["inputs"])
    )

    logger.info("Step 3 of 4: running %s in the local pipeline runner", edge_zip.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".validate-", dir=out_dir))
    try:
        runner_payload = (
            inputs.batches(payload, step) if declared["batch_input"] else payload
        )
        outputs, runner_seconds = edge_run.run_edge_package(
            edge_zip, runner_payload, work, wheel_dir, keep_report=work / "runner.md"
        )
        logger.info("Step 4 of 4: checking %d outputs", len(outputs))
        output_name = next(iter(declared["outputs"]))
        failures = (
            checks.check_count(expected, outputs)
            + checks.check_states(
                expected,
                outputs,
                output_name,
                lambda i: (i * step, i * step + window_size - 1),
            )
            + checks.check_types(
                outputs,
                {**declared["outputs"], **{m: "String" for m in declared["metrics"]}},
            )
            + checks.check_metrics(outputs, declared["metrics"])
        )
        result = {
            "passed": not failures,
            "first_failure": failures[0] if failures else None,
            "failures": failures[:50],
            "n_failures": len(failures),
            "package_id": info["package_id"],
            "package_version": info["package_version"],
            "edge_package": edge_zip.name,
            "edge_package_sha256": info["edge_package_sha256"],
            "model_uri": f"models:/{model_name}/{version}",
            "model_name": model_name,
            "model_version": version,
            "data": str(data_dir),
            "n_rows": len(frame),
            "window_size": window_size,
            "step": step,
            "batch_input": declared["batch_input"],
            "n_windows": len(expected),
            "n_outputs": len(outputs),
            "expected_states": expected,
            "edge_states": [o.get(output_name) for o in outputs if isinstance(o, dict)],
            "runner_seconds": round(runner_seconds, 1),
            "seconds": round(time.perf_counter() - started, 1),
        }
        _write_results(out_dir, work, result, frame, declared)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise ValidationFailed(
            f"Edge package {edge_zip.name} failed validation ({len(failures)} problems); "
            f"first: {failures[0]} Details: {out_dir / 'validation.json'}",
            result,
        )
    logger.info(
        "Validation passed: %d windows agree with the model (runner %.1f s)",
        len(expected),
        runner_seconds,
    )
    return result


def _write_results(out_dir: Path, work: Path, result: dict, frame, declared) -> None:
    png = work / "predictions.png"
    report.plot_predictions(frame, declared["inputs"], result, png)
    html = report.render_html(result, png)
    runner_report = work / "runner.md"
    files = {
        "validation.json": json.dumps(result, indent=2) + "\n",
        "report.html": html,
    }
    for name, text in files.items():
        temp = work / f"{name}.tmp"
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, out_dir / name)
    os.replace(png, out_dir / "predictions.png")
    if runner_report.is_file():
        os.replace(runner_report, out_dir / "runner_report.md")


def find_wheel_dir(explicit: str | None = None) -> Path | None:
    """Return the local wheel folder for an offline run, or None to use the index."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--package", type=Path, required=True, help="package_model output"
    )
    parser.add_argument("--model-name", required=True, help="registered model name")
    parser.add_argument(
        "--model-version",
        default="latest",
        help="registered version number or 'latest'",
    )
    parser.add_argument("--data", type=Path, required=True, help="data asset folder")
    parser.add_argument(
        "--n-rows",
        type=int,
        default=None,
        help=f"held-out rows from the end of the data (default: {DEFAULT_WINDOWS} windows)",
    )
    parser.add_argument("--validation", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--wheels",
        default=None,
        help="folder of target-platform wheels for an offline run "
        "(default: $PLANT2EDGE_WHEELS or $PLANT2EDGE_HOME/cache/wheels if present)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("simaticai"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        validate(
            args.package,
            args.model_name,
            args.model_version,
            args.data,
            args.validation,
            args.n_rows,
            find_wheel_dir(args.wheels),
        )
    except ValidationFailed as exc:
        logger.error("%s", exc)
        return 1
    except (LookupError, ValueError, FileNotFoundError, edge_run.EdgeRunError) as exc:
        logger.error("Validation could not run: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
