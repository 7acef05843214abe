"""Build the AI SDK pipeline of a state identifier model and export its packages.

One Python component contains ``entrypoint.py`` (from ``edge/``), ``edge_config.json``,
the pickled scikit-learn Pipeline and the model's code modules. Its inputs and
output come from the model signature, each window signal gets a range metric,
and the window step is a pipeline parameter.

Exports run offline when a wheel folder is given: pip reads only that folder,
and the AI SDK's vulnerability lookup on pypi.org is switched off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path

from edge_requirements import (
    SUPPORTED_PYTHON,
    TARGET_PYTHON,
    edge_requirements,
    requirements_text,
    warn_about_training_versions,
)
from model_source import ModelSource
from simaticai import deployment
from simaticai.helpers.reporter import PipelineReportWriter

logger = logging.getLogger(__name__)

EDGE_DIR = Path(__file__).resolve().parent / "edge"
ENTRYPOINT = "entrypoint.py"
EDGE_CONFIG = "edge_config.json"
MODEL_DIR = "model"
MODEL_FILE = "model.pkl"
STEP_PARAMETER = "window_step"
COMPONENT_NAME = "state_identifier"
PICKLE_FORMATS = ("pickle", "cloudpickle")


class ExportError(RuntimeError):
    """The AI SDK could not export the edge package, for example over an invalid wheel."""


class OfflineReportWriter(PipelineReportWriter):
    """Package report writer that skips the per-dependency vulnerability lookup.

    During ``Pipeline.export``, simaticai 2.9.0 requests
    ``https://pypi.org/pypi/<name>/<version>/json`` for every dependency and
    catches only timeouts, so the export fails without internet. The report lists each dependency as
    "Can not be checked" instead.
    """

    def _update_vulnerability_dict(self, dependency_list: list[tuple]):
        for package_name, package_version in dependency_list:
            key = (self.transform_package_name(package_name), package_version)
            self.vulnerability_dict[key] = None


def quiet_sdk_loggers() -> None:
    """Keep the AI SDK's per-file INFO lines (every zip entry) out of the step log."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("simaticai"):
            logging.getLogger(name).setLevel(logging.WARNING)


def metric_names(signals: list[str]) -> list[str]:
    return [f"{signal}_range" for signal in signals]


def stage_component(
    source: ModelSource, pipeline_object, signals: list[str], dest: Path
) -> dict:
    """Write the component source folder into ``dest``; return the edge config."""
    dest.mkdir(parents=True)
    shutil.copy(EDGE_DIR / ENTRYPOINT, dest / ENTRYPOINT)
    model_dir = dest / MODEL_DIR
    model_dir.mkdir()
    if source.serialization_format in PICKLE_FORMATS:
        shutil.copy(source.path / source.pickled_model, model_dir / MODEL_FILE)
    else:
        # skops files need the skops package to load; a plain pickle needs nothing.
        logger.info(
            "Re-serializing the %s model as a pickle for the edge runtime",
            source.serialization_format,
        )
        with open(model_dir / MODEL_FILE, "wb") as file:
            pickle.dump(pipeline_object, file, protocol=pickle.HIGHEST_PROTOCOL)
    code_dir = model_dir / "code"
    code_dir.mkdir()
    for module in source.code_modules():
        target = code_dir / module.relative_to(source.path / source.code_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(module, target)
    config = {
        "model_name": source.name,
        "model_version": source.version,
        "model_file": f"{MODEL_DIR}/{MODEL_FILE}",
        "code_dir": f"{MODEL_DIR}/code",
        "inputs": [vars(variable) for variable in source.inputs],
        "output": vars(source.output),
        "signal_columns": signals,
        "window_size": source.window_size,
        "step": source.step,
        "step_parameter": STEP_PARAMETER,
        "metrics": metric_names(signals),
    }
    (dest / EDGE_CONFIG).write_text(
        json.dumps(config, indent=2) + "\n", encoding="utf-8"
    )
    return config


def write_requirements(source: ModelSource, dest: Path) -> dict[str, str]:
    pins = edge_requirements(source.code_modules())
    warn_about_training_versions(pins, source.path / "requirements.txt")
    (dest / "requirements.txt").write_text(requirements_text(pins), encoding="utf-8")
    return pins


def build_pipeline(
    source: ModelSource, component_dir: Path, config: dict, batch_input: bool = False
) -> deployment.Pipeline:
    """Return a one-component AI SDK pipeline for the staged component folder."""
    if TARGET_PYTHON not in SUPPORTED_PYTHON:
        raise ValueError(
            f"This environment runs Python {TARGET_PYTHON}, but AI Inference Server "
            f"runs Python {' and '.join(SUPPORTED_PYTHON)}. Package the model in an "
            "environment with one of those versions."
        )
    component = deployment.PythonComponent(
        name=COMPONENT_NAME,
        version=str(source.version),
        python_version=TARGET_PYTHON,
        desc=f"State identifier {source.name} version {source.version}",
    )
    for variable in source.inputs:
        component.add_input(variable.name, variable.type)
    component.add_output(source.output.name, source.output.type)
    for name in config["metrics"]:
        component.add_metric(
            name, desc="Range (max - min) of this signal in the window"
        )
    component.batch.inputBatch = batch_input
    component.add_resources(component_dir, [ENTRYPOINT, EDGE_CONFIG, MODEL_DIR])
    component.set_entrypoint(ENTRYPOINT)
    component.set_requirements(component_dir / "requirements.txt")
    pipeline = deployment.Pipeline.from_components(
        [component],
        name=source.name,
        version=str(source.version),
        desc=f"{source.name} model version {source.version}: one state per window",
    )
    pipeline.add_parameter(
        STEP_PARAMETER,
        default_value=source.step,
        type_name="Integer",
        desc="Rows between window starts",
    )
    pipeline.report_writer.__class__ = OfflineReportWriter
    return pipeline


def check_wheel_cache(wheel_dir: Path, pins: dict[str, str]) -> None:
    """Raise FileNotFoundError naming each pinned requirement without a wheel.

    With a wheel folder the export reads no package index, and pip's own error
    for a missing wheel names an unrelated package (setuptools).
    """
    names = {path.name.lower() for path in wheel_dir.glob("*.whl")}
    missing = []
    for name, version in sorted(pins.items()):
        prefix = f"{name.lower().replace('-', '_')}-{version}-"
        if not any(wheel.startswith(prefix) for wheel in names):
            missing.append(f"{name}=={version}")
    if missing:
        raise FileNotFoundError(
            f"The wheel folder {wheel_dir} has no wheel for {', '.join(missing)}. "
            "Fill it with 'make wheels' (scripts/fetch-wheels.py) where the package "
            "index is reachable, or point PLANT2EDGE_WHEELS at a complete folder."
        )


@contextlib.contextmanager
def sdk_environment(temp_dir: Path, wheel_dir: Path | None):
    """Keep the AI SDK's temporary files and pip inside ``temp_dir``, offline if asked.

    Sets TMPDIR and HOME (for pip subprocesses) and ``tempfile.tempdir`` (for
    this process) into ``temp_dir``, because the AI SDK leaves temporary folders
    behind and pip may write below HOME. With ``wheel_dir`` pip reads wheels only from
    that folder. Registry access belongs outside this context, because MLflow
    credentials may live below the real HOME.
    """
    (temp_dir / "home").mkdir(parents=True, exist_ok=True)
    changes = {"TMPDIR": str(temp_dir), "HOME": str(temp_dir / "home")}
    if not os.environ.get("SIMATICAI_TELEMETRY"):
        # Without a decision the AI SDK raises an error that requests `simaticai telemetry`.
        changes["SIMATICAI_TELEMETRY"] = "false"
    if wheel_dir is not None:
        changes.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheel_dir))
    saved_env = {key: os.environ.get(key) for key in changes}
    saved_tempdir = tempfile.tempdir
    os.environ.update(changes)
    tempfile.tempdir = str(temp_dir)
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def export_edge_package(
    pipeline: deployment.Pipeline, dest: Path, package_id: uuid.UUID, version: str
) -> Path:
    """Export the full edge package into ``dest``; return the zip path."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        zip_path = pipeline.export(
            destination=dest,
            package_id=package_id,
            version=version,
            package_type="full",
        )
    except (RuntimeError, AssertionError) as exc:
        # simaticai 2.9.0 raises either one when pip cannot collect the wheels.
        raise ExportError(_export_failure(exc)) from exc
    return _with_checksum(Path(zip_path))


def _export_failure(exc: Exception) -> str:
    """Return pip's error lines and where pip looked for wheels, with the fix."""
    lines = [line.strip() for line in str(exc).splitlines()]
    errors = [line for line in lines if line.startswith("ERROR:")] or lines[:1]
    wheel_dir = os.environ.get("PIP_FIND_LINKS")
    if os.environ.get("PIP_NO_INDEX") and wheel_dir:
        where = (
            f"pip read wheels only from {wheel_dir}. Fill that folder with "
            f"'scripts/fetch-wheels.py --dest {wheel_dir}' after deleting any wheel "
            "that pip reports as invalid."
        )
    else:
        where = (
            "pip used the package index. Check access to it, or pass --wheels DIR "
            "filled with scripts/fetch-wheels.py."
        )
    return f"Exporting the edge package failed: {' '.join(errors)} {where}"


def export_delta_package(
    pipeline: deployment.Pipeline,
    dest: Path,
    package_id: uuid.UUID,
    version: str,
    previous_zip: Path,
) -> Path | None:
    """Export a delta package against ``previous_zip``; None when the SDK refuses one.

    The AI SDK builds a delta only if the previous full package has the same
    package id and the same Python requirements.
    """
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(previous_zip, dest / previous_zip.name)
    try:
        zip_path = pipeline.export(
            destination=dest,
            package_id=package_id,
            version=version,
            package_type="delta",
        )
    except AssertionError as exc:
        logger.warning("No delta package against %s: %s", previous_zip.name, exc)
        return None
    finally:
        (dest / previous_zip.name).unlink(missing_ok=True)
    return _with_checksum(Path(zip_path))


def save_config_package(
    pipeline: deployment.Pipeline, dest: Path, package_id: uuid.UUID, version: str
) -> Path:
    """Save the pipeline configuration package (the AI SDK's source form) as a zip."""
    dest.mkdir(parents=True, exist_ok=True)
    zip_path = Path(
        pipeline.save(destination=dest, package_id=package_id, version=version)
    )
    unpacked = dest / zip_path.stem
    if unpacked.is_dir():
        shutil.rmtree(unpacked)
    return zip_path


def _with_checksum(zip_path: Path) -> Path:
    """Replace the SDK's ``<name>.sha256`` by ``<name>.zip.sha256`` (sha256sum format)."""
    zip_path.with_suffix(".sha256").unlink(missing_ok=True)
    checksum_path(zip_path).write_text(f"{sha256_of(zip_path)}  {zip_path.name}\n")
    return zip_path


def checksum_path(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + ".sha256")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def footprint(zip_path: Path) -> dict:
    """Return the sizes in bytes of the edge package, its wheels and each wheel."""
    with zipfile.ZipFile(zip_path) as package:
        component_zips = [
            name
            for name in package.namelist()
            if name.startswith("components/") and name.endswith(".zip")
        ]
        wheels: dict[str, int] = {}
        packages_size = 0
        component_size = 0
        for name in component_zips:
            component_size += package.getinfo(name).file_size
            with package.open(name) as raw, zipfile.ZipFile(raw) as component:
                for info in component.infolist():
                    if info.filename.endswith("PythonPackages.zip"):
                        packages_size += info.file_size
                        with (
                            component.open(info) as inner_raw,
                            zipfile.ZipFile(inner_raw) as inner,
                        ):
                            for wheel in inner.infolist():
                                wheels[wheel.filename] = wheel.file_size
    return {
        "edge_package_bytes": zip_path.stat().st_size,
        "component_bytes": component_size,
        "python_packages_bytes": packages_size,
        "model_and_code_bytes": component_size - packages_size,
        "wheels": dict(sorted(wheels.items())),
    }
