"""Upload the edge package to blob storage and sign short-lived read-only SAS URLs."""

from __future__ import annotations

import datetime as dt
import logging
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Azure container names: 3-63 lower-case letters, digits and single hyphens.
CONTAINER_PATTERN = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$")
SHA256_METADATA = "sha256"
SAS_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_SAS_EXPIRY_MINUTES = 24 * 60


class BlobError(RuntimeError):
    """The package cannot be uploaded or signed."""


@dataclass(frozen=True)
class UploadedBlob:
    account_name: str
    container: str
    name: str
    url: str
    uploaded: bool


def redact_url(url: str) -> str:
    """Drop the query string, which contains the SAS token."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def validate_container(name: str) -> str:
    if not CONTAINER_PATTERN.match(name):
        raise BlobError(
            f"blob_container {name!r} is invalid: use 3 to 63 lower-case letters, "
            "digits and single hyphens, starting and ending with a letter or digit."
        )
    return name


def validate_sas_expiry(minutes: int) -> int:
    if not 1 <= minutes <= MAX_SAS_EXPIRY_MINUTES:
        raise BlobError(
            f"sas_expiry_minutes {minutes} is out of range: use 1 to "
            f"{MAX_SAS_EXPIRY_MINUTES} minutes (the URL only has to outlive the "
            "device's download)."
        )
    return minutes


def service_client(connection_string: str):
    from azure.storage.blob import BlobServiceClient

    try:
        return BlobServiceClient.from_connection_string(connection_string)
    except ValueError as exc:
        # The SDK's message quotes no part of the string, so it is safe to show.
        raise BlobError(
            f"The blob storage connection string is invalid: {exc}"
        ) from exc


def account_key(service) -> str:
    key = getattr(service.credential, "account_key", None)
    if not key:
        raise BlobError(
            "The blob storage connection string has no AccountKey, which signing "
            "a SAS URL needs. Use the storage account's key-based connection string."
        )
    return key


def upload_package(
    service,
    container: str,
    blob_name: str,
    path: Path,
    sha256: str,
    metadata: dict[str, str],
) -> UploadedBlob:
    """Upload ``path`` unless the blob already has the same SHA-256.

    The SHA-256 is stored as blob metadata, so that the device can check its
    download against it (header ``x-ms-meta-sha256``).
    """
    from azure.core.exceptions import AzureError

    try:
        return _upload(service, container, blob_name, path, sha256, metadata)
    except AzureError as exc:
        raise BlobError(
            f"Uploading {path.name} to container {container} at "
            f"{service.primary_endpoint} failed: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0]}. Check that the storage account is "
            "reachable and the key is current."
        ) from exc


def _upload(
    service,
    container: str,
    blob_name: str,
    path: Path,
    sha256: str,
    metadata: dict[str, str],
) -> UploadedBlob:
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
    from azure.storage.blob import ContentSettings

    container_client = service.get_container_client(container)
    try:
        container_client.create_container()
        logger.info("Created blob container %s", container)
    except ResourceExistsError:
        pass
    blob = container_client.get_blob_client(blob_name)
    try:
        existing = blob.get_blob_properties().metadata.get(SHA256_METADATA)
    except ResourceNotFoundError:
        existing = None
    if existing == sha256:
        logger.info(
            "Blob %s already contains this package (same SHA-256); skipping the upload",
            blob.url,
        )
        return UploadedBlob(service.account_name, container, blob_name, blob.url, False)
    size = path.stat().st_size
    logger.info("Uploading %s (%.1f MB) to %s", path.name, size / 1e6, blob.url)
    with open(path, "rb") as data:
        blob.upload_blob(
            data,
            length=size,
            overwrite=True,
            metadata={SHA256_METADATA: sha256, **metadata},
            content_settings=ContentSettings(content_type="application/zip"),
            max_concurrency=4,
        )
    return UploadedBlob(service.account_name, container, blob_name, blob.url, True)


def read_sas_url(
    blob: UploadedBlob,
    key: str,
    expiry_minutes: int,
    *,
    now: dt.datetime | None = None,
) -> str:
    """Return the blob URL with a read-only SAS token valid for ``expiry_minutes``."""
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas

    now = now or dt.datetime.now(dt.UTC)
    https_only = blob.url.startswith("https://")
    token = generate_blob_sas(
        account_name=blob.account_name,
        container_name=blob.container,
        blob_name=blob.name,
        account_key=key,
        permission=BlobSasPermissions(read=True),
        start=now - SAS_CLOCK_SKEW,
        expiry=now + dt.timedelta(minutes=expiry_minutes),
        protocol="https" if https_only else None,
    )
    return f"{blob.url}?{token}"
