"""Finding the registered model and checking its contract before packaging."""

from __future__ import annotations

import shutil

import edge_requirements
import model_source
import pytest
import yaml

MODEL_NAME = "state-identifier"


def test_resolve_version_latest_is_highest(registry, model_dir):
    registry.register_model(model_dir)
    registry.register_model(model_dir)

    assert model_source.resolve_version(registry.client(), MODEL_NAME, "latest") == "2"
    assert model_source.resolve_version(registry.client(), MODEL_NAME, " 1 ") == "1"


def test_resolve_version_rejects_unknown_model(registry, model_dir):
    registry.register_model(model_dir)

    with pytest.raises(
        LookupError, match=r"'no-such-model' not found.*\['state-identifier'\]"
    ):
        model_source.resolve_version(registry.client(), "no-such-model", "latest")


def test_resolve_version_rejects_unknown_version(registry, model_dir):
    registry.register_model(model_dir)

    with pytest.raises(
        LookupError, match=r"has no version 7; registered versions are \[1\]"
    ):
        model_source.resolve_version(registry.client(), MODEL_NAME, "7")


@pytest.mark.parametrize("text", ["1.a", "1.0", "v2", "", "-1"])
def test_check_version_text_rejects_non_digits(text):
    with pytest.raises(ValueError, match="Invalid model_version .*digits only"):
        model_source.check_version_text(text)


def strip_signature(model_dir, dest):
    shutil.copytree(model_dir, dest)
    mlmodel = yaml.safe_load((dest / "MLmodel").read_text())
    mlmodel.pop("signature")
    (dest / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    return dest


def test_read_model_rejects_missing_signature(model_dir, tmp_path):
    unsigned = strip_signature(model_dir, tmp_path / "model")

    with pytest.raises(ValueError, match="has no signature"):
        model_source.read_model(MODEL_NAME, "1", unsigned)


def test_read_model_rejects_missing_metadata(model_dir, tmp_path):
    dest = shutil.copytree(model_dir, tmp_path / "model")
    mlmodel = yaml.safe_load((dest / "MLmodel").read_text())
    del mlmodel["metadata"]["step"]
    (dest / "MLmodel").write_text(yaml.safe_dump(mlmodel))

    with pytest.raises(ValueError, match=r"lacks MLmodel metadata \['step'\]"):
        model_source.read_model(MODEL_NAME, "1", dest)


def test_read_model_maps_signature_types(model_dir):
    source = model_source.read_model(MODEL_NAME, "1", model_dir)

    assert [(v.name, v.type) for v in source.inputs] == [
        ("ph1", "Double"),
        ("ph2", "Double"),
        ("ph3", "Double"),
    ]
    assert (source.output.name, source.output.type) == ("state", "Integer")
    assert (source.window_size, source.step) == (300, 300)
    assert source.data_asset == "state-identifier-data:1"
    assert source.serialization_format == "pickle"


def test_load_pipeline_rejects_metadata_disagreeing_with_stage(model_dir, tmp_path):
    dest = shutil.copytree(model_dir, tmp_path / "model")
    mlmodel = yaml.safe_load((dest / "MLmodel").read_text())
    mlmodel["metadata"]["window_size"] = 200
    (dest / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    source = model_source.read_model(MODEL_NAME, "1", dest)

    with pytest.raises(
        ValueError, match="window_size=200 differs from the first stage"
    ):
        model_source.load_pipeline(source)


def test_edge_requirements_pin_closure_without_mlflow_or_pandas(model_dir):
    source = model_source.read_model(MODEL_NAME, "1", model_dir)

    pins = edge_requirements.edge_requirements(source.code_modules())

    assert {"scikit-learn", "numpy", "scipy", "joblib"} <= set(pins)
    assert "pandas" not in pins
    assert not any(name.startswith("mlflow") for name in pins)
    assert all(version[0].isdigit() for version in pins.values())


def test_edge_requirements_reject_mlflow_import(tmp_path):
    module = tmp_path / "uses_mlflow.py"
    module.write_text("import numpy\nimport mlflow.sklearn\n")

    with pytest.raises(
        ValueError, match="would need 'mlflow.*remove the MLflow import"
    ):
        edge_requirements.edge_requirements([module])


def test_edge_requirements_reject_unknown_import(tmp_path):
    module = tmp_path / "uses_missing.py"
    module.write_text("import numpy\nimport not_installed_anywhere\n")

    with pytest.raises(
        ValueError, match="'not_installed_anywhere'.*no installed distribution"
    ):
        edge_requirements.edge_requirements([module])


def test_edge_requirements_warn_about_training_versions(tmp_path, caplog):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==0.0.1\nscikit-learn==1.9.1\nmlflow==3.17.2\n")

    edge_requirements.warn_about_training_versions(
        {"numpy": "2.4.6", "scikit-learn": "1.9.1"}, requirements
    )

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert (
        "saved with numpy==0.0.1, but this environment has numpy==2.4.6" in warnings[0]
    )
