"""register_package: only validated packages reach the registry, as <model>_edge."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import mlflow
import pytest
import register_package
from register_package import RegistrationRejected

MODEL_NAME = "state-identifier"
EDGE_NAME = f"{MODEL_NAME}_edge"
PACKAGE_ID = "0d5a2a3c-5e0a-4a8e-9b1e-3c2f1f0b7a11"


def write_zip(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as package:
        package.writestr("pipeline_config.yml", text)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (path.parent / f"{path.name}.sha256").write_text(f"{digest}  {path.name}\n")
    return digest


def make_package(folder: Path, version: str, delta: bool = False) -> Path:
    """A package_model output folder with small stand-in zips."""
    digest = write_zip(folder / f"edge/{MODEL_NAME}-edge_{version}.zip", version)
    info = {
        "package_id": PACKAGE_ID,
        "package_version": version,
        "model_name": MODEL_NAME,
        "model_version": version,
        "data_asset": "state-identifier-data:1",
        "validation": None,
        "edge_package": f"edge/{MODEL_NAME}-edge_{version}.zip",
        "edge_package_sha256": digest,
        "delta_package": None,
        "delta_origin_version": None,
        "inputs": [{"name": "ph1", "type": "Double"}],
        "output": {"name": "state", "type": "Integer"},
        "metrics": ["ph1_range"],
        "parameters": {"window_step": 300},
        "window_size": 300,
        "step": 300,
        "python_version": "3.11",
        "requirements": {"scikit-learn": "1.9.1"},
    }
    if delta:
        write_zip(folder / f"delta/{MODEL_NAME}-edge_delta_{version}.zip", "delta")
        info["delta_package"] = f"delta/{MODEL_NAME}-edge_delta_{version}.zip"
        info["delta_origin_version"] = str(int(version) - 1)
    (folder / "package.json").write_text(json.dumps(info))
    return folder


def make_validation(folder: Path, package: Path, passed: bool = True) -> Path:
    info = json.loads((package / "package.json").read_text())
    folder.mkdir(parents=True)
    result = {
        "passed": passed,
        "first_failure": None
        if passed
        else "Window 3 (payload rows 900-1199): expected state=1, got 2.",
        "edge_package": Path(info["edge_package"]).name,
        "edge_package_sha256": info["edge_package_sha256"],
        "package_id": info["package_id"],
    }
    (folder / "validation.json").write_text(json.dumps(result))
    return folder


def edge_versions(registry) -> list[str]:
    client = registry.client()
    if not client.search_registered_models(f"name = '{EDGE_NAME}'"):
        return []
    found = client.search_model_versions(f"name = '{EDGE_NAME}'")
    return [str(number) for number in sorted(int(v.version) for v in found)]


def test_register_refuses_failed_validation(registry, tmp_path):
    package = make_package(tmp_path / "package", "1")
    validation = make_validation(tmp_path / "validation", package, passed=False)

    with pytest.raises(
        RegistrationRejected,
        match=r"failed, so nothing was registered\. First problem: Window 3 \(payload "
        r"rows 900-1199\): expected state=1, got 2\. See ",
    ):
        register_package.register(package, validation, MODEL_NAME)

    assert edge_versions(registry) == []


def test_register_refuses_package_changed_after_validation(registry, tmp_path):
    package = make_package(tmp_path / "package", "1")
    validation = make_validation(tmp_path / "validation", package)
    write_zip(package / f"edge/{MODEL_NAME}-edge_1.zip", "changed")

    with pytest.raises(RegistrationRejected, match="package.json records"):
        register_package.register(package, validation, MODEL_NAME)

    assert edge_versions(registry) == []


def test_register_refuses_other_model_name(registry, tmp_path):
    package = make_package(tmp_path / "package", "1")
    validation = make_validation(tmp_path / "validation", package)

    with pytest.raises(
        RegistrationRejected, match="built from model 'state-identifier'"
    ):
        register_package.register(package, validation, "other-model")

    assert edge_versions(registry) == []


def test_register_refuses_invalid_package_version(registry, tmp_path):
    package = make_package(tmp_path / "package", "1")
    info = json.loads((package / "package.json").read_text())
    info["package_version"] = "1.a"
    (package / "package.json").write_text(json.dumps(info))
    validation = make_validation(tmp_path / "validation", package)

    with pytest.raises(RegistrationRejected, match=r"Invalid package version '1\.a'"):
        register_package.register(package, validation, MODEL_NAME)

    assert edge_versions(registry) == []


def test_register_uses_model_version_as_edge_version(registry, tmp_path):
    package = make_package(tmp_path / "package", "3")
    validation = make_validation(tmp_path / "validation", package)

    registered = register_package.register(package, validation, MODEL_NAME)

    version = registry.client().get_model_version(EDGE_NAME, "3")
    assert registered["version"] == "3"
    assert edge_versions(registry) == ["3"]
    assert version.tags["package_id"] == PACKAGE_ID
    assert version.tags["model_name"] == MODEL_NAME
    assert version.tags["model_version"] == "3"
    assert version.tags["data_asset"] == "state-identifier-data:1"
    assert version.tags["validation"] == "passed"


def test_register_source_holds_zip_checksum_and_package_json(registry, tmp_path):
    package = make_package(tmp_path / "package", "1")
    (package / "edge" / f"{MODEL_NAME}-edge_1_tested.zip").write_bytes(b"runner copy")
    validation = make_validation(tmp_path / "validation", package)

    register_package.register(package, validation, MODEL_NAME)

    source = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{EDGE_NAME}/1", dst_path=str(tmp_path / "download")
        )
    )
    names = sorted(p.name for p in source.iterdir())
    info = json.loads((source / "package.json").read_text())
    assert names == [
        "package.json",
        f"{MODEL_NAME}-edge_1.zip",
        f"{MODEL_NAME}-edge_1.zip.sha256",
    ]
    assert info["validation"] == "passed"
    assert info["package_id"] == PACKAGE_ID
    assert info["edge_package"] == f"{MODEL_NAME}-edge_1.zip"


def test_register_logs_delta_package_beside(registry, tmp_path):
    first = make_package(tmp_path / "package-1", "1")
    register_package.register(
        first, make_validation(tmp_path / "validation-1", first), MODEL_NAME
    )
    second = make_package(tmp_path / "package-2", "2", delta=True)

    register_package.register(
        second, make_validation(tmp_path / "validation-2", second), MODEL_NAME
    )

    version = registry.client().get_model_version(EDGE_NAME, "2")
    delta = Path(
        mlflow.artifacts.download_artifacts(
            version.tags["delta_package"], dst_path=str(tmp_path / "delta")
        )
    )
    assert version.tags["delta_origin_version"] == "1"
    assert sorted(p.name for p in delta.iterdir()) == [
        f"{MODEL_NAME}-edge_delta_2.zip",
        f"{MODEL_NAME}-edge_delta_2.zip.sha256",
    ]
    assert edge_versions(registry) == ["1", "2"]


def test_register_refuses_already_registered_version(registry, tmp_path):
    package = make_package(tmp_path / "package", "2")
    register_package.register(
        package, make_validation(tmp_path / "validation", package), MODEL_NAME
    )

    with pytest.raises(RegistrationRejected, match="version 2 is already registered"):
        register_package.register(package, tmp_path / "validation", MODEL_NAME)

    assert edge_versions(registry) == ["2"]


def test_register_refuses_version_below_latest(registry, tmp_path):
    newer = make_package(tmp_path / "package-3", "3")
    register_package.register(
        newer, make_validation(tmp_path / "validation-3", newer), MODEL_NAME
    )
    older = make_package(tmp_path / "package-2", "2")

    with pytest.raises(RegistrationRejected, match=r"already has later versions \[3\]"):
        register_package.register(
            older, make_validation(tmp_path / "validation-2", older), MODEL_NAME
        )

    assert edge_versions(registry) == ["3"]


def test_register_main_writes_registration(registry, tmp_path):
    package = make_package(tmp_path / "package", "1")
    validation = make_validation(tmp_path / "validation", package)
    out = tmp_path / "registration"

    status = register_package.main(
        [
            "--package",
            str(package),
            "--validation",
            str(validation),
            "--model-name",
            MODEL_NAME,
            "--registration",
            str(out),
        ]
    )

    registration = json.loads((out / "registration.json").read_text())
    assert status == 0
    assert registration["name"] == EDGE_NAME
    assert registration["version"] == "1"


@pytest.mark.slow
def test_registered_real_package_has_contract_tags(registered_v1, packaged, tmp_path):
    with packaged.activate():
        client = packaged.registry.client()
        version = client.get_model_version(EDGE_NAME, "1")
        source = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{EDGE_NAME}/1", dst_path=str(tmp_path)
            )
        )

    assert registered_v1["version"] == "1"
    assert version.tags["validation"] == "passed"
    assert version.tags["model_version"] == "1"
    assert sorted(p.name for p in source.iterdir()) == [
        "package.json",
        f"{MODEL_NAME}-edge_1.zip",
        f"{MODEL_NAME}-edge_1.zip.sha256",
    ]
