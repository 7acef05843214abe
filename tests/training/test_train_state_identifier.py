"""Tests of the train_state_identifier component: inputs, saving, MLflow round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
import yaml

REQUIRED_METADATA = {
    "window_size",
    "step",
    "feature_columns",
    "n_states",
    "data_asset_name",
    "data_asset_version",
}


@pytest.fixture(scope="module")
def short_frame(labeled_frame) -> pd.DataFrame:
    return labeled_frame.iloc[:3000].reset_index(drop=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window_size": 1}, "window_size must be at least 2 rows, got 1"),
        ({"step": 0}, "step must be at least 1 row, got 0"),
        ({"n_states": 1}, "n_states must be at least 2, got 1"),
        (
            {"signal_columns": ["ph1", "power"]},
            r"Signal columns \['power'\] not found in the training data",
        ),
    ],
)
def test_train_rejects_invalid_inputs(trainer, short_frame, options, message):
    with pytest.raises(trainer.TrainingError, match=message):
        trainer.train_state_identifier(short_frame, **options)


def test_train_rejects_too_few_rows(trainer, labeled_frame):
    with pytest.raises(
        trainer.TrainingError,
        match=r"has 899 rows, which contain 2 complete windows .* at least 900 rows",
    ):
        trainer.train_state_identifier(labeled_frame.iloc[:899])


def test_train_rejects_too_few_rows_with_overlap(trainer, labeled_frame):
    with pytest.raises(trainer.TrainingError, match="at least 500 rows"):
        trainer.train_state_identifier(
            labeled_frame.iloc[:450], window_size=300, step=100
        )


def test_train_rejects_text_signals(trainer, short_frame):
    frame = short_frame.assign(ph2=short_frame["ph2"].astype(str))

    with pytest.raises(
        trainer.TrainingError, match=r"Signal columns \['ph2'\] are not numeric"
    ):
        trainer.train_state_identifier(frame)


def test_train_rejects_constant_signals(trainer):
    frame = pd.DataFrame(np.ones((1200, 3)), columns=["ph1", "ph2", "ph3"])

    with pytest.raises(
        trainer.TrainingError, match="only 1 distinct windows, fewer than n_states=3"
    ):
        trainer.train_state_identifier(frame)


def test_train_rejects_missing_values(trainer, short_frame):
    frame = short_frame.copy()
    frame.loc[5, "ph1"] = np.nan

    with pytest.raises(
        trainer.TrainingError, match="missing or infinite signal values"
    ):
        trainer.train_state_identifier(frame)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a comma-separated list"),
        ("ph1,,ph3", "is not a comma-separated list"),
        ("ph1,ph2,ph1", r"names \['ph1'\] more than once"),
    ],
)
def test_parse_signal_columns_rejects_bad_lists(trainer, text, message):
    with pytest.raises(trainer.TrainingError, match=message):
        trainer.parse_signal_columns(text)


def test_parse_signal_columns_strips_spaces(trainer):
    assert trainer.parse_signal_columns(" ph1, ph2 ,ph3") == ["ph1", "ph2", "ph3"]


def test_read_training_data_without_parquet(trainer, tmp_path):
    (tmp_path / "notes.txt").write_text("x")

    with pytest.raises(
        trainer.TrainingError, match=r"data.parquet not found .*notes.txt"
    ):
        trainer.read_training_data(tmp_path)


def test_read_training_data_returns_manifest(trainer, labeled_asset_folder):
    data, manifest = trainer.read_training_data(labeled_asset_folder)

    assert len(data) == 42079
    assert manifest["name"] == "state-identifier-data"
    assert manifest["version"] == "1"


def test_states_numbered_by_signal_level(trainer, labeled_frame):
    pipeline = trainer.train_state_identifier(labeled_frame)
    features = pipeline[:-1].named_steps["windows"].transform(labeled_frame)
    states = pipeline.predict(labeled_frame)

    mean_levels = [features[states == state, :3].mean() for state in range(3)]

    assert mean_levels == sorted(mean_levels)


def test_states_same_for_every_seed(trainer, labeled_frame):
    results = [
        trainer.train_state_identifier(labeled_frame, random_seed=seed).predict(
            labeled_frame
        )
        for seed in (0, 1, 7)
    ]

    np.testing.assert_array_equal(results[1], results[0])
    np.testing.assert_array_equal(results[2], results[0])


def test_saved_model_metadata_and_files(default_model_dir):
    mlmodel = yaml.safe_load((default_model_dir / "MLmodel").read_text())
    metadata = mlmodel["metadata"]

    assert REQUIRED_METADATA <= set(metadata)
    assert metadata["window_size"] == 300
    assert metadata["step"] == 300
    assert metadata["feature_columns"] == ["ph1", "ph2", "ph3"]
    assert metadata["n_states"] == 3
    assert metadata["data_asset_name"] == "state-identifier-data"
    assert metadata["data_asset_version"] == "1"
    assert len(metadata["window_feature_names"]) == 27
    assert metadata["training_windows"] == 140
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "pickle"
    assert (default_model_dir / "model.pkl").is_file()
    assert (default_model_dir / "code" / "state_identifier.py").is_file()


def test_model_round_trips_through_pyfunc(
    default_model_dir, labeled_frame, allow_pickle
):
    model = mlflow.pyfunc.load_model(str(default_model_dir))

    states = model.predict(labeled_frame[["ph1", "ph2", "ph3"]])
    signature = model.metadata.signature

    assert states.shape == (140,)
    assert signature.inputs.input_names() == ["ph1", "ph2", "ph3"]
    assert [spec.type.name for spec in signature.inputs.inputs] == ["double"] * 3
    assert signature.outputs.input_names() == ["state"]
    assert signature.outputs.inputs[0].type.name == "long"
    assert model.metadata.metadata["n_states"] == 3


def test_model_round_trips_through_sklearn(
    default_model_dir, labeled_frame, allow_pickle
):
    pipeline = mlflow.sklearn.load_model(str(default_model_dir))
    pyfunc_states = mlflow.pyfunc.load_model(str(default_model_dir)).predict(
        labeled_frame
    )

    states = pipeline.predict(labeled_frame)

    assert [name for name, _ in pipeline.steps] == ["windows", "scaler", "cluster"]
    np.testing.assert_array_equal(states, pyfunc_states)


def test_model_loads_without_mlflow(default_model_dir, labeled_asset_folder):
    """A fresh interpreter loads model.pkl with pickle and code/ on sys.path."""
    script = (
        "import pickle, sys, pandas as pd\n"
        f"sys.path.insert(0, {str(default_model_dir / 'code')!r})\n"
        f"model = pickle.load(open({str(default_model_dir / 'model.pkl')!r}, 'rb'))\n"
        f"rows = pd.read_parquet({str(labeled_asset_folder / 'data.parquet')!r})\n"
        "print(len(model.predict(rows)), 'mlflow' in sys.modules)\n"
    )

    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert completed.stdout.split() == ["140", "False"]


def test_save_rejects_non_empty_output(trainer, labeled_frame, tmp_path):
    pipeline = trainer.train_state_identifier(labeled_frame)
    output = tmp_path / "model"
    output.mkdir()
    (output / "old.txt").write_text("keep")

    with pytest.raises(trainer.TrainingError, match="is not empty"):
        trainer.save_state_identifier(
            pipeline, output, {"feature_columns": ["ph1", "ph2", "ph3"]}
        )
    assert [path.name for path in output.iterdir()] == ["old.txt"]


def test_save_failure_leaves_no_output(trainer, labeled_frame, tmp_path):
    pipeline = trainer.train_state_identifier(labeled_frame)
    output = tmp_path / "model"

    with pytest.raises(KeyError):
        trainer.save_state_identifier(pipeline, output, metadata={})

    assert list(output.iterdir()) == []
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_main_saves_model_and_logs_params(
    trainer, labeled_asset_folder, tmp_path, mlflow_store
):
    output = tmp_path / "out" / "model"

    code = trainer.main(
        ["--data", str(labeled_asset_folder), "--model", str(output), "--n-states", "3"]
    )

    runs = mlflow.search_runs([mlflow_store], output_format="list")
    assert code == 0
    assert (output / "MLmodel").is_file()
    assert len(runs) == 1
    assert runs[0].data.params["window_size"] == "300"
    assert runs[0].data.params["signal_columns"] == "ph1,ph2,ph3"
    assert runs[0].data.tags["data_asset_version"] == "1"
    assert runs[0].data.metrics["training_windows"] == 140


def test_main_attaches_to_step_run(
    trainer, labeled_asset_folder, tmp_path, mlflow_store, monkeypatch
):
    run_id = mlflow.MlflowClient().create_run(mlflow_store).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", run_id)

    code = trainer.main(
        ["--data", str(labeled_asset_folder), "--model", str(tmp_path / "m")]
    )

    run = mlflow.get_run(run_id)
    assert code == 0
    assert run.data.params["n_states"] == "3"
    assert len(mlflow.search_runs([mlflow_store], output_format="list")) == 1


def test_main_reports_invalid_input(trainer, labeled_asset_folder, tmp_path, caplog):
    output = tmp_path / "model"

    code = trainer.main(
        [
            "--data",
            str(labeled_asset_folder),
            "--model",
            str(output),
            "--window-size",
            "1",
        ]
    )

    assert code == 2
    assert "window_size must be at least 2 rows, got 1" in caplog.text
    assert not output.exists()


def test_main_without_manifest_records_unknown_lineage(
    trainer, labeled_frame, tmp_path, mlflow_store
):
    folder = tmp_path / "data"
    folder.mkdir()
    labeled_frame.iloc[:3000].to_parquet(folder / "data.parquet")

    code = trainer.main(["--data", str(folder), "--model", str(tmp_path / "model")])

    metadata = yaml.safe_load((tmp_path / "model" / "MLmodel").read_text())["metadata"]
    assert code == 0
    assert metadata["data_asset_name"] == "unknown"
    assert metadata["data_asset_version"] == "unknown"
    assert json.dumps(metadata)
