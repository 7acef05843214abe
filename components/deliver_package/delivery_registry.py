"""Edge packages in the MLflow model registry: resolve, approve, fetch, verify, tag.

An edge package is registered as ``<model>_edge``; the source of each version
is an artifact folder holding exactly one ``*.zip``, its SHA-256 file
(``<zip>.sha256`` or ``<stem>.sha256``, first token = hex digest) and
``package.json`` (``package_id``, ``package_version``, ...).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

APPROVAL_TAG = "approval.{environment}"
DELIVERED_TAG = "delivered.{environment}"
DELIVERY_TAG = "delivery.{environment}.{device}"
LAST_ATTEMPT_TAG = "last_delivery_attempt"
# MLflow tag keys allow letters, digits, _ - . / : and spaces.
TAG_UNSAFE = re.compile(r"[^\w.\-:/]")
ENVIRONMENT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
SHA256_PATTERN = re.compile(r"^[0-9a-fA-F]{64}$")
HASH_CHUNK = 1 << 20


class RegistryError(RuntimeError):
    """The package is missing, unapproved, incomplete or corrupt."""


@dataclass(frozen=True)
class EdgePackage:
    name: str
    version: str
    zip_path: Path
    sha256: str
    info: dict
    tags: dict[str, str]

    @property
    def package_id(self) -> str:
        return str(self.info["package_id"])

    @property
    def package_version(self) -> str:
        return str(self.info["package_version"])


def validate_environment(environment: str) -> str:
    if not ENVIRONMENT_PATTERN.match(environment):
        raise RegistryError(
            f"environment {environment!r} is invalid: use 1 to 64 letters, digits, "
            "'_' or '-' (for example dev or production)."
        )
    return environment


def tag_safe(text: str) -> str:
    return TAG_UNSAFE.sub("_", text)


def approve_command(name: str, version: str, environment: str) -> str:
    return (
        f"plant2edge approve --name {name} --version {version} "
        f"--environment {environment}"
    )


def _versions(client, name: str) -> list[int]:
    found = client.search_model_versions(f"name='{name}'")
    return sorted(int(v.version) for v in found)


def resolve_version(client, name: str, version: str):
    """Return the ModelVersion for ``version`` (a number or ``latest``)."""
    from mlflow.exceptions import MlflowException

    if "'" in name:
        raise RegistryError(f"package_name {name!r} is invalid: it contains a quote.")
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        edge = sorted(
            m.name
            for m in client.search_registered_models()
            if m.name.endswith("_edge")
        )
        listing = ", ".join(edge) if edge else "none"
        raise RegistryError(
            f"Edge package {name!r} is not registered in the model registry. "
            f"Registered edge packages: {listing}. Run the packaging pipeline first."
        ) from exc
    versions = _versions(client, name)
    if not versions:
        raise RegistryError(
            f"Edge package {name!r} has no versions; run the packaging pipeline."
        )
    if version == "latest":
        chosen = versions[-1]
    elif version.isdigit() and int(version) in versions:
        chosen = int(version)
    else:
        raise RegistryError(
            f"Edge package {name!r} has no version {version!r}. Available versions: "
            f"{', '.join(map(str, versions))} (or 'latest')."
        )
    return client.get_model_version(name, str(chosen))


def check_approval(model_version, environment: str, required: bool) -> dict | None:
    """Return the approval record; raise if approval is required and missing."""
    raw = model_version.tags.get(APPROVAL_TAG.format(environment=environment))
    if raw is None:
        if required:
            raise RegistryError(
                f"Edge package {model_version.name} version {model_version.version} is "
                f"not approved for environment {environment!r}. Approve it with:\n  "
                + approve_command(
                    model_version.name, model_version.version, environment
                )
            )
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return {"value": raw}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _one(folder: Path, pattern: str, description: str, source: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise RegistryError(
            f"The package source {source} must contain exactly one {description}; found {names}. "
            "Register the package again with the packaging pipeline."
        )
    return found[0]


def read_expected_sha256(zip_path: Path, source: str) -> tuple[str, Path]:
    for candidate in (
        zip_path.with_name(zip_path.name + ".sha256"),
        zip_path.with_suffix(".sha256"),
    ):
        if candidate.is_file():
            text = candidate.read_text().split()
            if text and SHA256_PATTERN.match(text[0]):
                return text[0].lower(), candidate
            raise RegistryError(
                f"{candidate.name} in {source} does not start with a SHA-256 hex digest."
            )
    raise RegistryError(
        f"The package source {source} has no {zip_path.name}.sha256; the package "
        "cannot be verified. Register it again with the packaging pipeline."
    )


def verify_folder(folder: Path, source: str) -> tuple[Path, str, dict]:
    """Check the folder's layout and the zip's SHA-256; return zip, digest and info."""
    zip_path = _one(folder, "*.zip", "edge package *.zip", source)
    expected, sha_file = read_expected_sha256(zip_path, source)
    actual = sha256_of(zip_path)
    if actual != expected:
        raise RegistryError(
            f"SHA-256 mismatch for {zip_path.name}: {sha_file.name} expects {expected}, "
            f"the file has {actual}. The artifact is corrupt or was changed after "
            "registration; run the packaging pipeline again."
        )
    info_path = folder / "package.json"
    try:
        info = json.loads(info_path.read_text())
    except FileNotFoundError as exc:
        raise RegistryError(
            f"The package source {source} has no package.json."
        ) from exc
    except json.JSONDecodeError as exc:
        raise RegistryError(
            f"package.json in {source} is not valid JSON: {exc}"
        ) from exc
    missing = [key for key in ("package_id", "package_version") if not info.get(key)]
    if missing:
        raise RegistryError(f"package.json in {source} lacks {', '.join(missing)}.")
    return zip_path, actual, info


def fetch_package(client, model_version, dest: Path) -> EdgePackage:
    """Download the version's artifact folder to ``dest`` and verify it."""
    import mlflow

    uri = client.get_model_version_download_uri(
        model_version.name, model_version.version
    )
    logger.info(
        "Downloading %s version %s from %s",
        model_version.name,
        model_version.version,
        uri,
    )
    local = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest))
    )
    zip_path, sha256, info = verify_folder(local, uri)
    logger.info("Verified %s: SHA-256 %s", zip_path.name, sha256)
    return EdgePackage(
        model_version.name,
        str(model_version.version),
        zip_path,
        sha256,
        info,
        dict(model_version.tags),
    )


def record_success(
    client, package: EdgePackage, environment: str, device_id: str, record: dict
) -> dict[str, str]:
    """Tag the version as delivered; only call this after the device reported Success."""
    tags = {
        DELIVERY_TAG.format(
            environment=environment, device=tag_safe(device_id)
        ): json.dumps(record),
        DELIVERED_TAG.format(environment=environment): package.version,
    }
    for key, value in tags.items():
        client.set_model_version_tag(package.name, package.version, key, value)
    return tags


def record_failure(client, package: EdgePackage, record: dict) -> dict[str, str]:
    value = json.dumps(record)
    client.set_model_version_tag(package.name, package.version, LAST_ATTEMPT_TAG, value)
    return {LAST_ATTEMPT_TAG: value}
