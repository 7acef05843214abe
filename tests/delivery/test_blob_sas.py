"""Uploads and SAS URLs against the local Azurite."""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.error
import urllib.parse
import urllib.request

import pytest
from delivery_blob import (
    BlobError,
    account_key,
    read_sas_url,
    redact_url,
    service_client,
    upload_package,
    validate_container,
    validate_sas_expiry,
)


@pytest.fixture
def uploaded(local_stack, tmp_path):
    path = tmp_path / "pkg.zip"
    path.write_bytes(b"PK fake package " * 100)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    service = service_client(local_stack.blob.connection_string)
    blob = upload_package(
        service,
        "sas-tests",
        f"p/{tmp_path.name}.zip",
        path,
        digest,
        {"package_id": "x"},
    )
    return blob, account_key(service), path


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_sas_url_downloads_package_with_sha256(uploaded):
    blob, key, path = uploaded

    url = read_sas_url(blob, key, 15)

    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == path.read_bytes()
        assert (
            response.headers["x-ms-meta-sha256"]
            == hashlib.sha256(path.read_bytes()).hexdigest()
        )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["sp"] == ["r"]


def test_expired_sas_url_is_rejected(uploaded):
    blob, key, _ = uploaded
    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)

    url = read_sas_url(blob, key, 15, now=two_hours_ago)

    assert http_status(url) == 403


def extended_expiry() -> str:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    return later.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("se", extended_expiry()),
        ("sp", "rw"),
        ("sig", "AAAA" + "B" * 40 + "="),
    ],
)
def test_tampered_sas_url_is_rejected(uploaded, field, value):
    blob, key, _ = uploaded
    url = read_sas_url(blob, key, 15)
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    query[field] = [value]
    tampered = parts._replace(query=urllib.parse.urlencode(query, doseq=True)).geturl()

    assert http_status(tampered) == 403


def test_sas_url_does_not_allow_writes(uploaded):
    blob, key, _ = uploaded
    url = read_sas_url(blob, key, 15)
    request = urllib.request.Request(
        url, data=b"evil", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)

    assert info.value.code == 403


def test_redact_url_drops_sas_token():
    url = "http://127.0.0.1:1/acct/c/p.zip?sv=2025&sp=r&sig=SECRET%3D"

    assert redact_url(url) == "http://127.0.0.1:1/acct/c/p.zip"


def test_upload_rejects_connection_string_without_key():
    service = service_client(
        "BlobEndpoint=http://127.0.0.1:1/acct;SharedAccessSignature=sv=2025&sig=abc"
    )

    with pytest.raises(BlobError, match="has no AccountKey"):
        account_key(service)


@pytest.mark.parametrize(
    "name", ["ab", "Edge-Packages", "edge--packages", "-edge", "a" * 64]
)
def test_validate_container_rejects_invalid_names(name):
    with pytest.raises(BlobError, match="is invalid: use 3 to 63 lower-case"):
        validate_container(name)


@pytest.mark.parametrize("minutes", [0, -5, 24 * 60 + 1])
def test_validate_sas_expiry_rejects_out_of_range(minutes):
    with pytest.raises(
        BlobError, match=f"sas_expiry_minutes {minutes} is out of range"
    ):
        validate_sas_expiry(minutes)
