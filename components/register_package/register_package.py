"""Register a validated edge package in the MLflow model registry.

Registers ``<model>_edge`` version N for model version N, only when the
validation step passed for exactly this package file. The version's source is
an artifact folder that contains exactly the edge package zip, its
``.zip.sha256`` and ``package.json``. When package_model built a delta package
against the previous edge version, it is logged beside it (``delta_package/``)
and named in the version's tags. Nothing is registered when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

EDGE_ARTIFACT_PATH = "edge_package"
DELTA_ARTIFACT_PATH = "delta_package"
# Files the AI SDK's local pipeline runner writes next to a package it tested.
RUNNER_SIDE_FILES = ("_tested", "_execution_report", "telemetry_data")


class RegistrationRejected(Exception):
    """A check failed; nothing was registered."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: Path, producer: str) -> dict:
    if not path.is_file():
        raise RegistrationRejected(
            f"{path} not found: pass the {producer} output folder."
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegistrationRejected(f"{path} is not valid JSON: {exc}") from exc


def check_inputs(package_dir: Path, validation_dir: Path, model_name: str) -> dict:
    """Return package.json after checking validation, names, versions and checksums."""
    info = read_json(package_dir / "package.json", "package_model package")
    validation = read_json(
        validation_dir / "validation.json", "validate_package validation"
    )
    if validation.get("passed") is not True:
        raise RegistrationRejected(
            f"Validation of {validation.get('edge_package', 'the package')} failed, so "
            f"nothing was registered. First problem: {validation.get('first_failure')} "
            f"See {validation_dir / 'report.html'}."
        )
    if info["model_name"] != model_name:
        raise RegistrationRejected(
            f"The package was built from model {info['model_name']!r}, not "
            f"{model_name!r}. Pass the model_name the package was built from."
        )
    if not str(info["package_version"]).isdigit():
        raise RegistrationRejected(
            f"Invalid package version {info['package_version']!r}: AI Inference Server "
            "needs digits. Rebuild the package from a registered model version."
        )
    edge_zip = package_dir / info["edge_package"]
    if not edge_zip.is_file():
        raise RegistrationRejected(f"Edge package {edge_zip} is missing.")
    actual = sha256_of(edge_zip)
    for source, recorded in (
        ("package.json", info["edge_package_sha256"]),
        ("validation.json", validation.get("edge_package_sha256")),
        (f"{edge_zip.name}.sha256", _recorded_sha(edge_zip)),
    ):
        if recorded != actual:
            raise RegistrationRejected(
                f"{edge_zip.name} has SHA-256 {actual}, but {source} records "
                f"{recorded}: the validated package is not the one given. Run the "
                "packaging pipeline again."
            )
    if validation.get("package_id") != info["package_id"]:
        raise RegistrationRejected(
            f"validation.json is for package id {validation.get('package_id')}, the "
            f"package has {info['package_id']}."
        )
    return {**info, "validation": "passed"}


def _recorded_sha(zip_path: Path) -> str | None:
    checksum = zip_path.with_name(zip_path.name + ".sha256")
    if not checksum.is_file():
        return None
    return checksum.read_text(encoding="utf-8").split()[0]


def stage_artifacts(
    package_dir: Path, info: dict, dest: Path
) -> tuple[Path, Path | None]:
    """Copy the edge package folder (and the delta folder) as the registry expects."""
    edge_dir = dest / EDGE_ARTIFACT_PATH
    edge_dir.mkdir(parents=True)
    edge_zip = package_dir / info["edge_package"]
    for path in (edge_zip, edge_zip.with_name(edge_zip.name + ".sha256")):
        shutil.copy(path, edge_dir / path.name)
    contract = {
        key: info[key]
        for key in (
            "package_id",
            "package_version",
            "model_name",
            "model_version",
            "data_asset",
            "validation",
            "edge_package_sha256",
            "delta_origin_version",
            "inputs",
            "output",
            "metrics",
            "parameters",
            "window_size",
            "step",
            "python_version",
            "requirements",
        )
    }
    contract["edge_package"] = edge_zip.name
    (edge_dir / "package.json").write_text(json.dumps(contract, indent=2) + "\n")
    check_source_folder(edge_dir)

    delta_dir = None
    if info.get("delta_package"):
        delta_zip = package_dir / info["delta_package"]
        delta_dir = dest / DELTA_ARTIFACT_PATH
        delta_dir.mkdir()
        for path in (delta_zip, delta_zip.with_name(delta_zip.name + ".sha256")):
            shutil.copy(path, delta_dir / path.name)
    return edge_dir, delta_dir


def check_source_folder(folder: Path) -> None:
    """Raise unless ``folder`` contains one zip, its checksum and package.json only."""
    names = sorted(path.name for path in folder.iterdir())
    zips = [name for name in names if name.endswith(".zip")]
    expected = sorted([*zips, *(f"{name}.sha256" for name in zips), "package.json"])
    side_files = [n for n in names if any(marker in n for marker in RUNNER_SIDE_FILES)]
    if len(zips) != 1 or names != expected or side_files:
        raise RegistrationRejected(
            f"The edge package folder must contain exactly one *.zip, its .zip.sha256 and "
            f"package.json; it contains {names}."
        )


def check_version_free(client: MlflowClient, edge_name: str, version: int) -> None:
    """Raise if ``edge_name`` already has version ``version`` or a later one."""
    existing = {
        int(v.version): v for v in client.search_model_versions(f"name = '{edge_name}'")
    }
    if version in existing:
        raise RegistrationRejected(
            f"{edge_name} version {version} is already registered (package id "
            f"{existing[version].tags.get('package_id')}). Register a new model "
            "version to package it again."
        )
    later = sorted(number for number in existing if number > version)
    if later:
        raise RegistrationRejected(
            f"{edge_name} already has later versions {later}, so version {version} "
            "cannot be created: MLflow numbers versions in ascending order."
        )


def create_numbered_version(
    client: MlflowClient, edge_name: str, version: int, **kwargs
):
    """Create ``edge_name`` version number ``version``; return the ModelVersion.

    MLflow numbers versions itself (highest existing + 1, deleted ones
    included). When earlier model versions were never packaged, the assigned
    number is too low: that version is deleted again, which uses up its number,
    until the registry assigns ``version``.

    NOTE: measured with MLflow's SQLite store only; whether an Azure ML
    workspace registry also keeps the numbers of deleted versions is untested.
    """
    for _ in range(version):
        created = client.create_model_version(edge_name, **kwargs)
        number = int(created.version)
        if number == version:
            return created
        client.delete_model_version(edge_name, created.version)
        if number > version:
            raise RegistrationRejected(
                f"The registry assigned {edge_name} version {number}, past {version}: "
                f"numbers up to {number - 1} were used by deleted versions. Register a "
                "new model version and package it."
            )
        logger.info(
            "Skipped %s version number %s: model version %s was never packaged",
            edge_name,
            number,
            number,
        )
    raise RegistrationRejected(f"Could not create {edge_name} version {version}.")


def register(package_dir: Path, validation_dir: Path, model_name: str) -> dict:
    """Register the validated package; return the registered version's details."""
    info = check_inputs(package_dir, validation_dir, model_name)
    edge_name = f"{model_name}_edge"
    version = int(info["package_version"])
    client = MlflowClient()
    try:
        client.get_registered_model(edge_name)
    except MlflowException:
        client.create_registered_model(
            edge_name,
            description=f"Edge packages of {model_name} for AI Inference Server",
        )
    check_version_free(client, edge_name, version)

    work = Path(tempfile.mkdtemp(prefix="register-package-"))
    try:
        edge_dir, delta_dir = stage_artifacts(package_dir, info, work)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(edge_dir), EDGE_ARTIFACT_PATH)
            if delta_dir is not None:
                mlflow.log_artifacts(str(delta_dir), DELTA_ARTIFACT_PATH)
            artifact_uri = run.info.artifact_uri
            run_id = run.info.run_id
    finally:
        shutil.rmtree(work, ignore_errors=True)

    tags = {
        "package_id": info["package_id"],
        "package_version": str(version),
        "model_name": model_name,
        "model_version": str(info["model_version"]),
        "data_asset": info["data_asset"],
        "validation": "passed",
    }
    if delta_dir is not None:
        tags["delta_package"] = f"{artifact_uri}/{DELTA_ARTIFACT_PATH}"
        tags["delta_origin_version"] = str(info["delta_origin_version"])
    created = create_numbered_version(
        client,
        edge_name,
        version,
        source=f"{artifact_uri}/{EDGE_ARTIFACT_PATH}",
        run_id=run_id,
        tags=tags,
        description=f"Edge package of {model_name} version {info['model_version']}",
    )
    logger.info(
        "Registered %s version %s (package id %s)%s",
        edge_name,
        created.version,
        info["package_id"],
        " with a delta package" if delta_dir is not None else "",
    )
    return {"name": edge_name, "version": str(created.version), "tags": tags}


@contextlib.contextmanager
def exit_on_sigterm():
    """Turn SIGTERM into SystemExit, so that temporary folders and the run are closed.

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--package", type=Path, required=True, help="package_model output"
    )
    parser.add_argument(
        "--validation", type=Path, required=True, help="validate_package output"
    )
    parser.add_argument("--model-name", required=True, help="registered model name")
    parser.add_argument(
        "--registration",
        type=Path,
        default=None,
        help="output folder for registration.json (name, version, tags)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        with exit_on_sigterm():
            registered = register(args.package, args.validation, args.model_name)
    except RegistrationRejected as exc:
        logger.error("Registration rejected: %s", exc)
        return 1
    if args.registration is not None:
        write_registration(args.registration, registered)
    return 0


def write_registration(folder: Path, registered: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / "registration.json.tmp"
    temp.write_text(json.dumps(registered, indent=2) + "\n", encoding="utf-8")
    temp.replace(folder / "registration.json")


if __name__ == "__main__":
    sys.exit(main())
