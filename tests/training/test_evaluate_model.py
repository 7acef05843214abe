"""Tests of the evaluate_model component: window labels, matching, outputs, MLflow."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_window_labels_take_most_common_label(evaluator):
    labels = pd.Series([-1, -1, -1, 0, 0, 1, 2, 2, 2, 2])

    plain = evaluator.window_labels(labels, n_windows=3, window_size=3, step=3)
    lagged = evaluator.window_labels(labels, n_windows=3, window_size=3, step=3, lag=1)

    assert plain.tolist() == [None, 0, 2]
    assert lagged.tolist() == [0, 2, 2]


def test_window_labels_ignore_missing_values(evaluator):
    labels = pd.Series([np.nan, np.nan, 1.0, np.nan])

    result = evaluator.window_labels(labels, n_windows=2, window_size=2, step=2)

    assert result.tolist() == [None, 1.0]


def test_matched_accuracy_finds_best_one_to_one_mapping(evaluator):
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    states = np.array([2, 2, 1, 0, 0, 1, 1, 1])

    accuracy, mapping = evaluator.matched_accuracy(labels, states)

    assert accuracy == pytest.approx(7 / 8)
    assert mapping == {2: 0, 0: 1, 1: 2}


def test_matched_accuracy_counts_extra_states_wrong(evaluator):
    labels = np.array(["idle", "idle", "run", "run"])
    states = np.array([0, 1, 2, 2])

    accuracy, mapping = evaluator.matched_accuracy(labels, states)

    assert accuracy == pytest.approx(3 / 4)
    assert mapping[2] == "run"
    assert len(mapping) == 2


def test_cluster_metrics_skip_single_state(evaluator):
    features = np.random.default_rng(0).normal(size=(10, 3))

    assert evaluator.cluster_metrics(features, np.zeros(10, dtype=int)) == {}


def run_evaluate(evaluator, model, data, tmp_path, *extra):
    metrics_dir, plots_dir = tmp_path / "metrics", tmp_path / "plots"
    code = evaluator.main(
        [
            "--model", str(model),
            "--data", str(data),
            "--metrics", str(metrics_dir),
            "--plots", str(plots_dir),
            *extra,
        ]
    )  # fmt: skip
    return code, metrics_dir, plots_dir


def test_main_writes_metrics_plots_and_logs(
    evaluator, default_model_dir, labeled_asset_folder, tmp_path, mlflow_store
):
    code, metrics_dir, plots_dir = run_evaluate(
        evaluator, default_model_dir, labeled_asset_folder, tmp_path
    )

    report = json.loads((metrics_dir / "metrics.json").read_text())
    runs = mlflow.search_runs([mlflow_store], output_format="list")
    artifacts = [
        item.path
        for item in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id, "plots")
    ]
    assert code == 0
    assert report["metrics"]["adjusted_rand_lag_corrected"] == pytest.approx(
        0.986, abs=0.001
    )
    assert report["metrics"]["adjusted_rand_plain"] == pytest.approx(0.610, abs=0.001)
    assert report["evaluation"]["label_column"] == "class"
    assert report["evaluation"]["label_lag_windows"] == 1
    assert report["model"] == {
        "data_asset_name": "state-identifier-data",
        "data_asset_version": "1",
    }
    assert report["data"] == {"name": "state-identifier-data", "version": "1"}
    for name in ("states_over_time.png", "clusters_pca.png"):
        assert (plots_dir / name).read_bytes()[:8] == PNG_MAGIC
        assert (plots_dir / name).stat().st_size > 20_000
    assert runs[0].data.metrics["silhouette"] == pytest.approx(
        report["metrics"]["silhouette"]
    )
    assert sorted(artifacts) == ["plots/clusters_pca.png", "plots/states_over_time.png"]


def test_main_without_labels_reports_cluster_metrics_only(
    evaluator, default_model_dir, labeled_frame, tmp_path, mlflow_store
):
    folder = tmp_path / "unlabeled"
    folder.mkdir()
    labeled_frame.drop(columns="class").to_parquet(folder / "data.parquet")

    code, metrics_dir, plots_dir = run_evaluate(
        evaluator, default_model_dir, folder, tmp_path
    )

    report = json.loads((metrics_dir / "metrics.json").read_text())
    assert code == 0
    assert set(report["metrics"]) == {"n_windows", "silhouette", "davies_bouldin"}
    assert report["evaluation"]["label_column"] is None
    assert (plots_dir / "states_over_time.png").is_file()


def test_main_with_label_lag_zero_scores_plain_twice(
    evaluator, default_model_dir, labeled_asset_folder, tmp_path, mlflow_store
):
    code, metrics_dir, _ = run_evaluate(
        evaluator, default_model_dir, labeled_asset_folder, tmp_path, "--label-lag", "0"
    )

    metrics = json.loads((metrics_dir / "metrics.json").read_text())["metrics"]
    assert code == 0
    assert metrics["adjusted_rand_lag_corrected"] == metrics["adjusted_rand_plain"]


def test_main_rejects_folder_without_model(
    evaluator, labeled_asset_folder, tmp_path, caplog, allow_pickle
):
    code, metrics_dir, plots_dir = run_evaluate(
        evaluator, tmp_path, labeled_asset_folder, tmp_path / "out"
    )

    assert code == 2
    assert f"No MLmodel file in {tmp_path}" in caplog.text
    assert not metrics_dir.exists()
    assert not plots_dir.exists()


def test_main_rejects_data_shorter_than_window(
    evaluator, default_model_dir, labeled_frame, tmp_path, caplog, allow_pickle
):
    folder = tmp_path / "short"
    folder.mkdir()
    labeled_frame.iloc[:100].to_parquet(folder / "data.parquet")

    code, metrics_dir, _ = run_evaluate(
        evaluator, default_model_dir, folder, tmp_path / "out"
    )

    assert code == 2
    assert "Got 100 rows, fewer than window_size=300" in caplog.text
    assert not metrics_dir.exists()
