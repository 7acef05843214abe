from __future__ import annotations

import json

import pytest

from plant2edge.assets import (
    DataAssetError,
    DataAssetNotFoundError,
    LocalDataStore,
    parse_reference,
)


@pytest.fixture
def store(p2e_home) -> LocalDataStore:
    return LocalDataStore(p2e_home / "data-assets")


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "payload"
    path.mkdir()
    (path / "data.txt").write_text("rows\n")
    return path


def test_register_writes_layout_and_asset_json(store, folder):
    version = store.register(
        "plant-data", folder, "uri_folder", "Three phases.", tags={"site": "A"}
    )

    assert version == "1"
    version_dir = store.root / "plant-data" / "1"
    assert (version_dir / "data" / "data.txt").read_text() == "rows\n"
    asset = json.loads((version_dir / "asset.json").read_text())
    assert asset["name"] == "plant-data"
    assert asset["version"] == "1"
    assert asset["type"] == "uri_folder"
    assert asset["path"] == "data"
    assert asset["description"] == "Three phases."
    assert asset["tags"] == {"site": "A"}
    assert asset["created_at"].endswith("+00:00")


def test_register_takes_next_integer_version(store, folder):
    versions = [store.register("plant-data", folder, "uri_folder") for _ in range(3)]

    assert versions == ["1", "2", "3"]
    assert store.list_versions("plant-data") == ["1", "2", "3"]


def test_register_leaves_no_temporary_folder(store, folder):
    store.register("plant-data", folder, "uri_folder")

    leftovers = [p.name for p in (store.root / "plant-data").iterdir()]
    assert leftovers == ["1"]


def test_register_file_keeps_its_name(store, tmp_path):
    note = tmp_path / "note.csv"
    note.write_text("a,b\n")

    version = store.register("note", note, "uri_file")

    resolved_version, path = store.resolve("note", version)
    assert resolved_version == "1"
    assert path == store.root / "note" / "1" / "note.csv"
    assert path.read_text() == "a,b\n"


def test_register_rejects_existing_version(store, folder):
    store.register("plant-data", folder, "uri_folder", version="4")

    with pytest.raises(DataAssetError, match=r"plant-data:4 already exists"):
        store.register("plant-data", folder, "uri_folder", version="4")


def test_register_rejects_folder_as_uri_file(store, folder):
    with pytest.raises(DataAssetError, match=r"as uri_file: it is not a file"):
        store.register("plant-data", folder, "uri_file")


def test_register_rejects_invalid_name(store, folder):
    with pytest.raises(DataAssetError, match=r"Invalid data asset name 'bad/name'"):
        store.register("bad/name", folder, "uri_folder")


def test_register_rejects_non_integer_version(store, folder):
    with pytest.raises(DataAssetError, match=r"Invalid data asset version '1.0'"):
        store.register("plant-data", folder, "uri_folder", version="1.0")


def test_resolve_latest_takes_highest_integer(store, folder):
    for _ in range(10):
        store.register("plant-data", folder, "uri_folder")

    version, path = store.resolve("plant-data", "latest")

    assert version == "10"
    assert path == store.root / "plant-data" / "10" / "data"


def test_resolve_unknown_version_lists_versions(store, folder):
    store.register("plant-data", folder, "uri_folder")
    store.register("plant-data", folder, "uri_folder")

    with pytest.raises(DataAssetNotFoundError, match=r"no version '7'. Versions: 1, 2"):
        store.resolve("plant-data", "7")


def test_resolve_unknown_name_lists_known_assets(store, folder):
    store.register("plant-data", folder, "uri_folder")

    with pytest.raises(DataAssetNotFoundError, match=r"Known data assets: plant-data"):
        store.resolve("other", "1")


def test_get_returns_asset_json(store, folder):
    store.register("plant-data", folder, "uri_folder", "first")

    assert store.get("plant-data", "1")["description"] == "first"


def test_parse_reference_forms():
    assert parse_reference("azureml:plant-data:3") == ("plant-data", "3")
    assert parse_reference("azureml:plant-data@latest") == ("plant-data", "latest")
    assert parse_reference("azureml://datastores/x/paths/y") is None
    assert parse_reference("../data") is None


def test_parse_reference_rejects_missing_version():
    with pytest.raises(DataAssetError, match=r"write 'azureml:<name>:<version>'"):
        parse_reference("azureml:plant-data")


def test_register_skips_incomplete_version_folder(store, folder):
    (store.root / "plant-data" / "1").mkdir(parents=True)
    (store.root / "plant-data" / "1" / "partial.txt").write_text("x")

    version = store.register("plant-data", folder, "uri_folder")

    assert version == "2"
    assert store.list_versions("plant-data") == ["2"]
