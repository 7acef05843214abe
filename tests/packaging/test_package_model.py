"""package_model: the edge package of a registered model, built offline."""

from __future__ import annotations

import json
import uuid
import zipfile

import edge_pipeline
import model_source
import package_model
import pytest
import yaml

MODEL_NAME = "state-identifier"


def read_zip_yaml(zip_path, name):
    with zipfile.ZipFile(zip_path) as package:
        return yaml.safe_load(package.read(name))


def component_files(edge_zip) -> dict[str, bytes]:
    with zipfile.ZipFile(edge_zip) as package:
        inner_name = next(n for n in package.namelist() if n.endswith(".zip"))
        with package.open(inner_name) as raw, zipfile.ZipFile(raw) as component:
            return {name: component.read(name) for name in component.namelist()}


@pytest.mark.slow
def test_package_model_writes_documented_layout(package_v1):
    info = json.loads((package_v1 / "package.json").read_text())

    names = sorted(p.relative_to(package_v1).as_posix() for p in package_v1.rglob("*"))
    assert names == [
        "config",
        "config/state-identifier_1.zip",
        "edge",
        "edge/state-identifier-edge_1.zip",
        "edge/state-identifier-edge_1.zip.sha256",
        "package.json",
        "reports",
        "reports/state-identifier_1_package_report.md",
        "sample_payload.json",
    ]
    assert info["package_version"] == "1"
    assert info["model_version"] == "1"
    assert info["data_asset"] == "state-identifier-data:1"
    assert info["delta_package"] is None
    assert uuid.UUID(info["package_id"]).version == 4
    checksum = (package_v1 / "edge/state-identifier-edge_1.zip.sha256").read_text()
    assert checksum == f"{info['edge_package_sha256']}  state-identifier-edge_1.zip\n"


@pytest.mark.slow
def test_package_model_declares_signature_types(package_v1):
    config = read_zip_yaml(
        package_v1 / "edge/state-identifier-edge_1.zip", "pipeline_config.yml"
    )

    flow = config["dataFlowPipeline"]
    component = flow["components"][0]
    assert [(i["name"], i["type"]) for i in flow["pipelineInputs"]] == [
        ("ph1", "Double"),
        ("ph2", "Double"),
        ("ph3", "Double"),
    ]
    outputs = [(o["name"], o["type"], o["metric"]) for o in flow["pipelineOutputs"]]
    assert outputs == [
        ("state", "Integer", False),
        ("ph1_range", "String", True),
        ("ph2_range", "String", True),
        ("ph3_range", "String", True),
    ]
    assert flow["pipelineParameters"] == [
        {"name": "window_step", "defaultValue": 300, "type": "Integer"}
    ]
    assert component["runtime"] == {"type": "python", "version": "3.11"}
    assert component["entrypoint"] == "./entrypoint.py"
    assert component["replicas"] == 1
    assert config["dataFlowPipelineInfo"]["dataFlowPipelineVersion"] == "1"


@pytest.mark.slow
def test_package_model_keeps_mlflow_out_of_edge(package_v1):
    info = json.loads((package_v1 / "package.json").read_text())
    files = component_files(package_v1 / "edge/state-identifier-edge_1.zip")

    requirements = files["requirements.txt"].decode().splitlines()
    wheels = info["footprint"]["wheels"]
    assert "model/model.pkl" in files
    assert "model/code/state_identifier.py" in files
    assert "entrypoint.py" in files
    assert all("==" in line for line in requirements if not line.startswith("#"))
    assert not any(line.startswith("mlflow") for line in requirements)
    assert not any(name.startswith("mlflow") for name in wheels)
    assert {name.split("-")[0] for name in wheels} == {
        name.replace("-", "_") for name in info["requirements"]
    }
    assert info["footprint"]["model_and_code_bytes"] < 100_000


@pytest.mark.slow
def test_package_model_skips_online_vulnerability_lookup(package_v1):
    report = (package_v1 / "reports/state-identifier_1_package_report.md").read_text()

    assert "| scikit_learn | 1.9.1 | Can not be checked |" in report
    assert "No known vulnerability" not in report


def test_build_pipeline_declares_batch_input(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMATICAI_TELEMETRY", "false")
    source = model_source.read_model(MODEL_NAME, "1", model_dir)
    pipeline = model_source.load_pipeline(source)
    component_dir = tmp_path / "component"
    config = edge_pipeline.stage_component(
        source, pipeline, ["ph1", "ph2", "ph3"], component_dir
    )
    edge_pipeline.write_requirements(source, component_dir)

    with edge_pipeline.sdk_environment(tmp_path / "tmp", None):
        sdk_pipeline = edge_pipeline.build_pipeline(source, component_dir, config, True)
        components = sdk_pipeline.get_pipeline_config()["dataFlowPipeline"][
            "components"
        ]

    assert components[0]["batch"] == {"inputBatch": "Yes", "outputBatch": "No"}


@pytest.mark.slow
def test_package_model_leaves_no_temporary_files(package_v1, packaged):
    leftovers = [p.name for p in package_v1.iterdir() if p.name.startswith(".")]
    tmp = packaged.outputs / "package-1-tmp"
    home = packaged.outputs / "package-1-home"

    assert leftovers == []
    assert list(tmp.iterdir()) == []
    assert list(home.iterdir()) == []


@pytest.mark.slow
def test_package_model_builds_delta_against_registered_version(
    package_v1, package_v2, registered_v1
):
    first = json.loads((package_v1 / "package.json").read_text())
    second = json.loads((package_v2 / "package.json").read_text())
    delta_zip = package_v2 / second["delta_package"]
    config = read_zip_yaml(delta_zip, "pipeline_config.yml")

    assert (
        second["package_id"]
        == first["package_id"]
        == registered_v1["tags"]["package_id"]
    )
    assert second["package_version"] == "2"
    assert second["delta_origin_version"] == "1"
    assert config["packageType"] == "delta"
    assert config["originVersion"] == "1"
    assert delta_zip.stat().st_size < 100_000
    assert (package_v2 / "edge/state-identifier-edge_2.zip").stat().st_size > 1_000_000
    assert (delta_zip.parent / f"{delta_zip.name}.sha256").is_file()


def test_package_model_rejects_invalid_version(registry, model_dir, tmp_path):
    registry.register_model(model_dir)
    out = tmp_path / "package"

    with pytest.raises(ValueError, match=r"Invalid model_version '1\.a'.*digits only"):
        package_model.build_package(MODEL_NAME, "1.a", out)

    assert not out.exists()
    assert (
        registry.client().search_registered_models(f"name = '{MODEL_NAME}_edge'") == []
    )


def test_package_model_main_reports_unknown_model(registry, tmp_path, capsys):
    out = tmp_path / "package"

    status = package_model.main(
        ["--model-name", "missing-model", "--model-version", "1", "--package", str(out)]
    )

    assert status == 1
    assert "Registered model 'missing-model' not found" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_package_model_main_reports_unknown_version(
    registry, model_dir, tmp_path, capsys
):
    registry.register_model(model_dir)
    out = tmp_path / "package"

    status = package_model.main(
        ["--model-name", MODEL_NAME, "--model-version", "4", "--package", str(out)]
    )

    assert status == 1
    assert "has no version 4; registered versions are [1]" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_find_wheel_dir_rejects_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="Run scripts/fetch-wheels.py"):
        package_model.find_wheel_dir(str(tmp_path / "missing"))


def test_check_wheel_cache_names_missing_wheels(tmp_path):
    (tmp_path / "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (tmp_path / "scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(
        b""
    )
    pins = {"numpy": "2.4.6", "scikit-learn": "1.9.1", "scipy": "1.17.1"}

    with pytest.raises(
        FileNotFoundError, match=r"no wheel for scipy==1\.17\.1\. .*make wheels"
    ):
        edge_pipeline.check_wheel_cache(tmp_path, pins)


def test_check_wheel_cache_accepts_complete_folder(tmp_path):
    (tmp_path / "numpy-2.4.6-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")

    edge_pipeline.check_wheel_cache(tmp_path, {"numpy": "2.4.6"})
