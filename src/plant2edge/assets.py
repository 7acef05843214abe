"""Local versioned data asset store, the stand-in for Azure ML data assets.

Layout: ``<root>/<name>/<version>/asset.json`` plus the payload beside it.
``asset.json`` contains ``name``, ``version`` (a string of a positive integer),
``type`` (``uri_folder`` or ``uri_file``), ``path`` (the payload's name relative
to the version folder), ``description``, ``tags`` and ``created_at`` (ISO 8601
UTC). The latest version is the highest integer. A new version is written into
``<name>/.tmp-<uuid>/`` and renamed to ``<name>/<version>``, so readers never
see a half-written version.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from plant2edge import settings

logger = logging.getLogger(__name__)

ASSET_FILE = "asset.json"
ASSET_TYPES = ("uri_folder", "uri_file")
LATEST = "latest"
# Azure ML data asset names: letters, digits, '-', '_' and '.', starting with a
# letter or digit, at most 255 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
VERSION_PATTERN = re.compile(r"^[1-9][0-9]*$")
_RENAME_ATTEMPTS = 20


class DataAssetError(ValueError):
    """A data asset name, version or payload that the store cannot use."""


class DataAssetNotFoundError(DataAssetError, LookupError):
    """A data asset or version that the store does not contain."""


class LocalDataStore:
    """Versioned data assets in a local folder, laid out as described above."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else settings.data_assets_dir()

    def list_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if self.list_versions(p.name))

    def list_versions(self, name: str) -> list[str]:
        """Return the versions of ``name`` in ascending integer order."""
        _check_name(name)
        folder = self.root / name
        if not folder.is_dir():
            return []
        versions = [
            p.name
            for p in folder.iterdir()
            if VERSION_PATTERN.match(p.name) and (p / ASSET_FILE).is_file()
        ]
        return sorted(versions, key=int)

    def get(self, name: str, version: str) -> dict:
        """Return the ``asset.json`` content of one version."""
        version = self._existing_version(name, version)
        asset_file = self.root / name / version / ASSET_FILE
        try:
            return json.loads(asset_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataAssetError(
                f"{asset_file} is not valid JSON ({exc}), so data asset "
                f"{name}:{version} cannot be read. Restore the file, or delete the "
                "version folder and register the data again."
            ) from exc

    def resolve(self, name: str, version_or_latest: str) -> tuple[str, Path]:
        """Return ``(version, payload path)`` for a version or ``"latest"``."""
        version = self._existing_version(name, version_or_latest)
        asset = self.get(name, version)
        payload = self.root / name / version / asset["path"]
        if not payload.exists():
            raise DataAssetNotFoundError(
                f"Data asset {name}:{version} is incomplete: its payload {payload} "
                f"is missing. Register a new version of {name!r}."
            )
        return version, payload

    def register(
        self,
        name: str,
        path: str | os.PathLike,
        type: str,
        description: str = "",
        tags: dict[str, str] | None = None,
        version: str | None = None,
        payload_name: str | None = None,
    ) -> str:
        """Copy ``path`` into the store as a new version and return the version.

        Without ``version`` the next integer version is taken. ``payload_name``
        defaults to ``data`` for a folder and to the file's own name for a file.
        """
        _check_name(name)
        source = Path(path)
        _check_payload(source, type)
        if version is not None:
            version = _check_version(str(version))
        payload_name = payload_name or ("data" if type == "uri_folder" else source.name)
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".tmp-{uuid.uuid4().hex}"
        try:
            _copy_payload(source, staging / payload_name)
            return self._publish(
                staging, name, version, type, payload_name, description, tags or {}
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, staging, name, version, type, payload_name, description, tags):
        fixed = version is not None
        for _ in range(_RENAME_ATTEMPTS):
            candidate = version if fixed else self._next_version(name)
            if fixed and (self.root / name / candidate).exists():
                raise _version_exists_error(name, candidate, self.list_versions(name))
            asset = {
                "name": name,
                "version": candidate,
                "type": type,
                "path": payload_name,
                "description": description,
                "tags": {str(k): str(v) for k, v in tags.items()},
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            (staging / ASSET_FILE).write_text(json.dumps(asset, indent=2) + "\n")
            try:
                os.rename(staging, self.root / name / candidate)
            except OSError as exc:
                # Another writer took this version between the check and the rename.
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                if fixed:
                    versions = self.list_versions(name)
                    raise _version_exists_error(name, candidate, versions) from exc
                continue
            logger.info("Registered data asset %s:%s (%s)", name, candidate, type)
            return candidate
        raise DataAssetError(
            f"Could not register data asset {name!r}: {_RENAME_ATTEMPTS} other "
            "versions were written at the same time. Try again."
        )

    def _next_version(self, name: str) -> str:
        # Count folders without asset.json too, because the rename cannot replace them.
        taken = [
            int(p.name)
            for p in (self.root / name).iterdir()
            if VERSION_PATTERN.match(p.name)
        ]
        return str(max(taken, default=0) + 1)

    def _existing_version(self, name: str, version: str) -> str:
        versions = self.list_versions(name)
        if not versions:
            known = ", ".join(self.list_names()) or "none"
            raise DataAssetNotFoundError(
                f"Data asset {name!r} not found in {self.root}. Known data assets: "
                f"{known}. Register it first, or fix the name."
            )
        requested = str(version).removeprefix("@")
        if requested == LATEST:
            return versions[-1]
        if requested not in versions:
            raise DataAssetNotFoundError(
                f"Data asset {name!r} has no version {requested!r}. Versions: "
                f"{', '.join(versions)}. Use one of them or '{name}@latest'."
            )
        return requested


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DataAssetError(
            f"Invalid data asset name {name!r}: use letters, digits, '-', '_' and "
            "'.', starting with a letter or digit, at most 255 characters."
        )


def _check_version(version: str) -> str:
    if not VERSION_PATTERN.match(version):
        raise DataAssetError(
            f"Invalid data asset version {version!r}: the local store uses positive "
            "integers such as '1' or '2'. Leave the version out to take the next one."
        )
    return version


def _check_payload(source: Path, type: str) -> None:
    if type not in ASSET_TYPES:
        raise DataAssetError(
            f"Invalid data asset type {type!r}: use one of {', '.join(ASSET_TYPES)}."
        )
    if type == "uri_folder" and not source.is_dir():
        raise DataAssetError(
            f"Cannot register {source} as uri_folder: it is not a folder."
        )
    if type == "uri_file" and not source.is_file():
        raise DataAssetError(f"Cannot register {source} as uri_file: it is not a file.")


def _copy_payload(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def _version_exists_error(name: str, version: str, versions: list[str]):
    return DataAssetError(
        f"Data asset {name}:{version} already exists (versions: "
        f"{', '.join(versions)}). Leave the version out to register the next "
        "one, or choose a version that does not exist."
    )


def parse_reference(reference: str) -> tuple[str, str] | None:
    """Split ``azureml:<name>:<version>`` or ``azureml:<name>@latest``.

    Returns ``(name, version)`` with version ``"latest"`` for ``@latest``, or
    None when ``reference`` is not a short ``azureml:`` asset reference (for
    example an ``azureml://datastores/...`` URI).
    """
    if not reference.startswith("azureml:") or reference.startswith("azureml://"):
        return None
    body = reference.removeprefix("azureml:")
    if body.endswith("@latest"):
        return body.removesuffix("@latest"), LATEST
    name, sep, version = body.rpartition(":")
    if not sep or not name or not version:
        raise DataAssetError(
            f"Invalid asset reference {reference!r}: write "
            "'azureml:<name>:<version>' or 'azureml:<name>@latest'."
        )
    return name, version
