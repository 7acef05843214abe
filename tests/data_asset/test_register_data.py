"""Tests of the register_data component against the local data asset store.

The Azure ML path is tested against a stand-in for ``MLClient.data`` that
checks the ``Data`` entity the component sends; a workspace cannot run here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

NAME = "state-identifier-data"


@pytest.fixture
def store_root(p2e_home, monkeypatch) -> Path:
    root = p2e_home / "data-assets"
    monkeypatch.setenv("PLANT2EDGE_DATA_ASSETS", str(root))
    return root


@pytest.fixture
def validated(sample_frame, tmp_path, write_data_folder) -> Path:
    return write_data_folder(sample_frame, tmp_path / "validated")


def snapshot(root: Path) -> dict[str, bytes]:
    """Return every file under ``root`` with its content."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def run_register(register_data, data: Path, out: Path, *extra: str) -> int:
    return register_data.main(["--data", str(data), "--asset-info", str(out), *extra])


def test_register_creates_version_one(register_data, validated, store_root, tmp_path):
    code = run_register(register_data, validated, tmp_path / "info")

    info = json.loads((tmp_path / "info" / "asset.json").read_text())
    version_dir = store_root / NAME / "1"
    asset = json.loads((version_dir / "asset.json").read_text())
    manifest = json.loads((version_dir / "data" / "manifest.json").read_text())
    assert code == 0
    assert info["name"] == NAME
    assert info["version"] == "1"
    assert info["asset_id"] == f"azureml:{NAME}:1"
    assert info["created"] is True
    assert info["tags"]["row_count"] == "42079"
    assert info["tags"]["time_start"] == "2019-02-08T07:36:36.443000Z"
    assert info["tags"]["time_end"] == "2019-02-08T10:31:31.443000Z"
    assert len(info["tags"]["content_sha256"]) == 64
    assert asset["type"] == "uri_folder"
    assert asset["path"] == "data"
    assert asset["tags"] == info["tags"]
    assert asset["created_at"].endswith("Z")
    assert manifest == {
        "name": NAME,
        "version": "1",
        "content_sha256": info["tags"]["content_sha256"],
        "row_count": 42079,
        "time_start": "2019-02-08T07:36:36.443000Z",
        "time_end": "2019-02-08T10:31:31.443000Z",
        "columns": ["DateTime", "ph1", "ph2", "ph3"],
    }
    assert (version_dir / "data" / "data.parquet").read_bytes() == (
        validated / "data.parquet"
    ).read_bytes()
    assert sorted(p.name for p in (store_root / NAME).iterdir()) == ["1"]


def test_register_reuses_version_for_same_data(
    register_data, validated, store_root, tmp_path
):
    run_register(register_data, validated, tmp_path / "first")
    before = snapshot(store_root)

    code = run_register(register_data, validated, tmp_path / "second")

    info = json.loads((tmp_path / "second" / "asset.json").read_text())
    assert code == 0
    assert info["version"] == "1"
    assert info["created"] is False
    assert snapshot(store_root) == before


def test_register_reuses_version_for_rewritten_rows(
    data_asset_stores, register_data, sample_frame, store_root, tmp_path
):
    store = data_asset_stores.LocalAssetStore(store_root)
    first = tmp_path / "first"
    first.mkdir()
    sample_frame.to_parquet(first / "data.parquet", compression="snappy")
    rewritten = tmp_path / "rewritten"
    rewritten.mkdir()
    reordered = sample_frame[["ph3", "DateTime", "ph1", "ph2"]].assign(
        DateTime=sample_frame["DateTime"].astype("datetime64[ns, UTC]")
    )
    reordered.to_parquet(
        rewritten / "data.parquet", compression="zstd", row_group_size=5000
    )
    assert (first / "data.parquet").read_bytes() != (
        rewritten / "data.parquet"
    ).read_bytes()

    created = register_data.register(first, NAME, store)
    reused = register_data.register(rewritten, NAME, store)

    assert created["created"] is True
    assert reused["created"] is False
    assert reused["version"] == "1"


def test_register_creates_version_two_for_changed_data(
    register_data, sample_frame, validated, store_root, tmp_path, write_data_folder
):
    run_register(register_data, validated, tmp_path / "first")
    changed = sample_frame.copy()
    changed.loc[123, "ph1"] += 0.01
    changed_dir = write_data_folder(changed, tmp_path / "changed")

    code = run_register(register_data, changed_dir, tmp_path / "second")

    first = json.loads((tmp_path / "first" / "asset.json").read_text())
    second = json.loads((tmp_path / "second" / "asset.json").read_text())
    assert code == 0
    assert second["version"] == "2"
    assert second["created"] is True
    assert second["tags"]["content_sha256"] != first["tags"]["content_sha256"]
    manifest = json.loads(
        (store_root / NAME / "2" / "data" / "manifest.json").read_text()
    )
    assert manifest["version"] == "2"
    assert sorted(p.name for p in (store_root / NAME).iterdir()) == ["1", "2"]


def test_failed_validation_leaves_versions_unchanged(
    register_data,
    validate_data,
    sample_frame,
    validated,
    store_root,
    tmp_path,
    write_data_folder,
):
    run_register(register_data, validated, tmp_path / "first")
    before = snapshot(store_root)
    bad = write_data_folder(sample_frame.drop(columns="ph3"), tmp_path / "bad")
    validated_bad = tmp_path / "validated-bad"
    validated_bad.mkdir()

    validate_code = validate_data.main(
        ["--data", str(bad), "--validation-report", str(tmp_path / "report"),
         "--validated-data", str(validated_bad)]
    )  # fmt: skip
    register_code = run_register(register_data, validated_bad, tmp_path / "second")

    assert validate_code == 1
    assert register_code == 1
    assert snapshot(store_root) == before
    assert not (tmp_path / "second" / "asset.json").exists()


def test_register_keeps_label_column(
    data_asset_stores, register_data, labeled_parquet, store_root, tmp_path
):
    store = data_asset_stores.LocalAssetStore(store_root)

    info = register_data.register(labeled_parquet, NAME, store)

    manifest = json.loads(
        (store_root / NAME / "1" / "data" / "manifest.json").read_text()
    )
    stored = pd.read_parquet(store_root / NAME / "1" / "data" / "data.parquet")
    assert info["created"] is True
    assert manifest["columns"] == ["DateTime", "ph1", "ph2", "ph3", "class"]
    assert stored["class"].value_counts()[-1] == 300


def test_register_retries_when_version_taken(
    data_asset_stores,
    register_data,
    sample_frame,
    validated,
    store_root,
    tmp_path,
    monkeypatch,
):
    store = data_asset_stores.LocalAssetStore(store_root)
    other = tmp_path / "other"
    other.mkdir()
    sample_frame.iloc[:100].to_parquet(other / "data.parquet")
    register_data.register(other, NAME, store)
    real_next_version = data_asset_stores.LocalAssetStore.next_version
    calls = []

    def stale_next_version(self, name):
        # The first call returns a number another writer has taken meanwhile.
        calls.append(name)
        return "1" if len(calls) == 1 else real_next_version(self, name)

    monkeypatch.setattr(
        data_asset_stores.LocalAssetStore, "next_version", stale_next_version
    )

    info = register_data.register(validated, NAME, store)

    assert info["version"] == "2"
    assert info["created"] is True
    assert len(calls) == 2
    assert sorted(p.name for p in (store_root / NAME).iterdir()) == ["1", "2"]


@pytest.mark.parametrize(
    "name", ["-data", "data.", "my data", "data/1", "", "x" * 256, "daten-ä"]
)
def test_register_rejects_invalid_asset_name(register_data, name):
    with pytest.raises(register_data.RegisterError, match="Invalid data asset name"):
        register_data.check_asset_name(name)


@pytest.mark.parametrize("name", ["state-identifier-data", "plant_7.v2", "A1", "9x"])
def test_register_accepts_valid_asset_name(register_data, name):
    assert register_data.check_asset_name(name) == name


def test_register_main_reports_invalid_name(
    register_data, validated, store_root, tmp_path, capsys
):
    code = run_register(
        register_data, validated, tmp_path / "info", "--asset-name", "my data!"
    )

    assert code == 1
    assert capsys.readouterr().err.startswith(
        "Registration failed: Invalid data asset name 'my data!'"
    )
    assert not store_root.exists()


def test_register_without_store_names_both_options(
    data_asset_stores, register_data, p2e_home
):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AZUREML_")}
    environ.pop("PLANT2EDGE_DATA_ASSETS", None)

    with pytest.raises(
        register_data.RegisterError,
        match=r"No data asset store is configured. Set PLANT2EDGE_DATA_ASSETS .* "
        r"AZUREML_ARM_SUBSCRIPTION, AZUREML_ARM_RESOURCEGROUP, "
        "AZUREML_ARM_WORKSPACE_NAME",
    ):
        data_asset_stores.open_store(environ)


def test_content_hash_ignores_file_layout(
    register_data, ingest_data, datasets_dir, tmp_path
):
    from_csv = ingest_data.ingest(str(datasets_dir / "si-sample.csv"), tmp_path / "a")
    from_parquet = ingest_data.ingest(
        str(datasets_dir / "si-sample.parquet"), tmp_path / "b"
    )

    csv_hash = register_data.content_sha256(pd.read_parquet(from_csv))
    parquet_hash = register_data.content_sha256(pd.read_parquet(from_parquet))

    assert csv_hash == parquet_hash


def test_content_hash_changes_with_row_order(register_data, sample_frame):
    reversed_rows = sample_frame.iloc[::-1].reset_index(drop=True)

    assert register_data.content_sha256(sample_frame) != register_data.content_sha256(
        reversed_rows
    )


class FakeDataOperations:
    """Stand-in for ``MLClient.data``: keeps the Data entities it is given."""

    def __init__(self):
        self.assets = []
        self.payloads = []

    def list(self, name):
        matches = [data for data in self.assets if data.name == name]
        if not matches:
            from azure.core.exceptions import ResourceNotFoundError

            raise ResourceNotFoundError(f"Data container {name} not found")
        return iter(matches)

    def create_or_update(self, data):
        payload = Path(data.path)
        self.payloads.append(
            {
                "files": sorted(p.name for p in payload.iterdir()),
                "manifest": json.loads((payload / "manifest.json").read_text()),
            }
        )
        self.assets.append(data)
        return data


class FakeMLClient:
    workspace_name = "plant-ws"

    def __init__(self):
        self.data = FakeDataOperations()


def test_azureml_store_creates_and_reuses_data(
    data_asset_stores, register_data, validated
):
    from azure.ai.ml.entities import Data

    client = FakeMLClient()
    store = data_asset_stores.AzureMLAssetStore(client)

    first = register_data.register(validated, NAME, store, "plant data")
    second = register_data.register(validated, NAME, store, "plant data")

    assert first["version"] == "1"
    assert first["created"] is True
    assert second["version"] == "1"
    assert second["created"] is False
    assert len(client.data.assets) == 1
    sent = client.data.assets[0]
    assert isinstance(sent, Data)
    assert sent.type == "uri_folder"
    assert sent.version == "1"
    assert sent.description == "plant data"
    assert sent.tags == first["tags"]
    assert client.data.payloads[0]["files"] == ["data.parquet", "manifest.json"]
    assert client.data.payloads[0]["manifest"]["version"] == "1"


def test_azureml_store_numbers_after_latest(
    data_asset_stores, register_data, sample_frame, validated
):
    from azure.ai.ml.entities import Data

    client = FakeMLClient()
    client.data.assets.append(
        Data(name=NAME, version="4", path="azureml://datastores/x/paths/y", tags={})
    )
    store = data_asset_stores.AzureMLAssetStore(client)

    info = register_data.register(validated, NAME, store)

    assert info["version"] == "5"
    assert client.data.payloads[0]["manifest"]["version"] == "5"


def test_open_store_uses_managed_identity(
    data_asset_stores, register_data, monkeypatch
):
    from azure.identity import ManagedIdentityCredential

    environ = {
        "AZUREML_ARM_SUBSCRIPTION": "00000000-0000-0000-0000-000000000000",
        "AZUREML_ARM_RESOURCEGROUP": "plant-rg",
        "AZUREML_ARM_WORKSPACE_NAME": "plant-ws",
    }
    monkeypatch.setenv(
        "DEFAULT_IDENTITY_CLIENT_ID", "11111111-1111-1111-1111-111111111111"
    )

    store = data_asset_stores.open_store(environ)

    assert isinstance(store, data_asset_stores.AzureMLAssetStore)
    assert store.ml_client.workspace_name == "plant-ws"
    assert store.ml_client.resource_group_name == "plant-rg"
    assert isinstance(store.ml_client._credential, ManagedIdentityCredential)
