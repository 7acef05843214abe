"""Tests of the register_model component against a local MLflow model registry."""

from __future__ import annotations

import json
from types import SimpleNamespace

import mlflow
import pytest

NAME = "state-identifier"
GOOD = {
    "n_windows": 140,
    "silhouette": 0.62,
    "davies_bouldin": 0.64,
    "adjusted_rand_plain": 0.61,
    "adjusted_rand_lag_corrected": 0.986,
}


def write_metrics(folder, metrics):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"metrics": metrics}))
    return folder


def run_register(registrar, model_dir, metrics_dir, output, *extra):
    code = registrar.main(
        [
            "--model", str(model_dir),
            "--metrics", str(metrics_dir),
            "--registration", str(output),
            *extra,
        ]
    )  # fmt: skip
    registration = None
    if (output / "registration.json").is_file():
        registration = json.loads((output / "registration.json").read_text())
    return code, registration


def registered_versions(name=NAME):
    return mlflow.MlflowClient().search_model_versions(f"name = '{name}'")


@pytest.mark.parametrize(
    ("metrics", "failed"),
    [
        (GOOD, []),
        ({**GOOD, "silhouette": 0.3}, ["silhouette 0.3000 < min_silhouette 0.5"]),
        (
            {**GOOD, "davies_bouldin": 1.5},
            ["davies_bouldin 1.5000 > max_davies_bouldin 1.0"],
        ),
        (
            {**GOOD, "adjusted_rand_lag_corrected": 0.5},
            ["adjusted_rand_lag_corrected 0.5000 < min_adjusted_rand 0.85"],
        ),
        ({"silhouette": 0.9, "davies_bouldin": 0.2}, []),
        ({"davies_bouldin": 0.2}, ["silhouette is missing from the metrics"]),
    ],
)
def test_check_thresholds(registrar, metrics, failed):
    thresholds = registrar.Thresholds(0.5, 1.0, 0.85)

    assert registrar.check_thresholds(metrics, thresholds) == failed


def test_decide_compares_adjusted_rand_when_both_have_it(registrar):
    latest = SimpleNamespace(version="3", tags={"adjusted_rand_lag_corrected": "0.99"})
    thresholds = registrar.Thresholds(0.5, 1.0)

    decision = registrar.decide(GOOD, thresholds, latest, "auto")

    assert decision.register is False
    assert decision.comparison["metric"] == "adjusted_rand_lag_corrected"
    assert decision.comparison["latest"] == 0.99
    assert "worse than version 3" in decision.reason


def test_decide_falls_back_to_silhouette(registrar):
    latest = SimpleNamespace(version="1", tags={"silhouette": "0.6"})

    decision = registrar.decide(GOOD, registrar.Thresholds(0.5, 1.0), latest, "auto")

    assert decision.register is True
    assert decision.comparison["metric"] == "silhouette"
    assert decision.comparison["not_worse"] is True


def test_decide_lower_davies_bouldin_is_better(registrar):
    latest = SimpleNamespace(version="2", tags={"davies_bouldin": "0.5"})

    decision = registrar.decide(
        GOOD, registrar.Thresholds(0.5, 1.0), latest, "davies_bouldin"
    )

    assert decision.register is False
    assert decision.comparison["higher_is_better"] is False


def test_decide_skips_same_data_and_metrics(registrar):
    tags = {key: str(value) for key, value in GOOD.items()}
    tags["data_asset"] = "state-identifier-data:2"
    latest = SimpleNamespace(version="5", tags=tags)
    thresholds = registrar.Thresholds(0.5, 1.0)

    same = registrar.decide(GOOD, thresholds, latest, "auto", "state-identifier-data:2")
    new_data = registrar.decide(
        GOOD, thresholds, latest, "auto", "state-identifier-data:3"
    )

    assert same.register is False
    assert "same metrics as version 5" in same.reason
    assert new_data.register is True


def test_decide_registers_when_latest_lacks_metric_tag(registrar):
    latest = SimpleNamespace(version="4", tags={})

    decision = registrar.decide(GOOD, registrar.Thresholds(0.5, 1.0), latest, "auto")

    assert decision.register is True
    assert "version 4 has no numeric silhouette tag" in decision.reason


def test_first_passing_model_is_registered_with_tags(
    registrar, default_model_dir, tmp_path, mlflow_store
):
    metrics_dir = write_metrics(tmp_path / "metrics", GOOD)

    code, registration = run_register(
        registrar, default_model_dir, metrics_dir, tmp_path / "out",
        "--min-adjusted-rand", "0.85",
    )  # fmt: skip

    version = mlflow.MlflowClient().get_model_version(NAME, "1")
    assert code == 0
    assert registration["registered"] is True
    assert registration["version"] == "1"
    assert registration["primary_metric"] == "adjusted_rand_lag_corrected"
    assert registration["reason"] == "passes the thresholds; first version of this name"
    assert version.tags["data_asset_name"] == "state-identifier-data"
    assert version.tags["data_asset_version"] == "1"
    assert version.tags["data_asset"] == "state-identifier-data:1"
    assert version.tags["adjusted_rand_lag_corrected"] == "0.986"
    assert version.tags["n_windows"] == "140"
    assert version.run_id == registration["run_id"]


def test_registered_version_loads_with_metadata(
    registrar, default_model_dir, tmp_path, mlflow_store
):
    metrics_dir = write_metrics(tmp_path / "metrics", GOOD)
    run_register(registrar, default_model_dir, metrics_dir, tmp_path / "out")

    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")

    assert model.metadata.metadata["window_size"] == 300
    assert model.metadata.signature.outputs.input_names() == ["state"]


def test_failing_model_is_not_registered(
    registrar, default_model_dir, tmp_path, mlflow_store
):
    metrics_dir = write_metrics(tmp_path / "metrics", {**GOOD, "silhouette": 0.2})

    code, registration = run_register(
        registrar, default_model_dir, metrics_dir, tmp_path / "out"
    )

    assert code == 0
    assert registration["registered"] is False
    assert registration["version"] is None
    assert registration["reason"].startswith("thresholds not met: silhouette 0.2000")
    assert registered_versions() == []


def test_failing_model_fails_step_when_asked(
    registrar, default_model_dir, tmp_path, mlflow_store, caplog
):
    metrics_dir = write_metrics(tmp_path / "metrics", {**GOOD, "davies_bouldin": 3.0})

    code, registration = run_register(
        registrar, default_model_dir, metrics_dir, tmp_path / "out",
        "--fail-if-not-registered", "True",
    )  # fmt: skip

    assert code == 1
    assert registration["registered"] is False
    assert "Not registered (fail_if_not_registered is True)" in caplog.text


def test_worse_model_not_registered_over_better(
    registrar, default_model_dir, tmp_path, mlflow_store
):
    better = write_metrics(tmp_path / "better", GOOD)
    worse = write_metrics(
        tmp_path / "worse", {**GOOD, "adjusted_rand_lag_corrected": 0.9}
    )
    # Equal in the primary metric, so not worse; another metric differs, so it
    # is not the same model as version 1 again.
    equal = write_metrics(
        tmp_path / "equal", {**GOOD, "davies_bouldin": GOOD["davies_bouldin"] - 0.01}
    )

    first_code, first = run_register(
        registrar, default_model_dir, better, tmp_path / "r1"
    )
    worse_code, second = run_register(
        registrar, default_model_dir, worse, tmp_path / "r2"
    )
    equal_code, third = run_register(
        registrar, default_model_dir, equal, tmp_path / "r3"
    )

    assert (first_code, worse_code, equal_code) == (0, 0, 0)
    assert first["version"] == "1"
    assert second["registered"] is False
    assert second["comparison"]["metric"] == "adjusted_rand_lag_corrected"
    assert second["comparison"]["latest_version"] == "1"
    assert second["comparison"]["candidate"] == 0.9
    assert second["comparison"]["latest"] == 0.986
    assert "worse than version 1" in second["reason"]
    assert third["registered"] is True
    assert third["version"] == "2"
    assert sorted(str(v.version) for v in registered_versions()) == ["1", "2"]


def test_decision_is_logged_on_step_run(
    registrar, default_model_dir, tmp_path, mlflow_store, monkeypatch
):
    run_id = mlflow.MlflowClient().create_run(mlflow_store).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)
    metrics_dir = write_metrics(tmp_path / "metrics", {**GOOD, "silhouette": 0.1})

    run_register(registrar, default_model_dir, metrics_dir, tmp_path / "out")

    run = mlflow.get_run(run_id)
    assert run.data.tags["registered"] == "false"
    assert run.data.tags["registration_reason"].startswith("thresholds not met")


def test_missing_metrics_file_is_reported(
    registrar, default_model_dir, tmp_path, mlflow_store, caplog
):
    code, registration = run_register(
        registrar, default_model_dir, tmp_path / "nowhere", tmp_path / "out"
    )

    assert code == 2
    assert registration is None
    assert "metrics.json not found" in caplog.text
