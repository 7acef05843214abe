"""Tests of the profile_data component on the sample data."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

SIGNALS = ["ph1", "ph2", "ph3"]
FIGURES = ["signals.png", "distributions.png", "intervals.png", "correlations.png"]


def test_profile_writes_report_with_figures(
    profile_data, labeled_parquet, tmp_path, p2e_home
):
    summary = profile_data.profile(labeled_parquet, tmp_path / "report", SIGNALS)

    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 4
    for caption in (
        "Signals over time",
        "Distributions",
        "Sampling intervals and gaps",
        "Correlations",
        "Summary statistics",
    ):
        assert f"<h2>{caption}</h2>" in page
    assert "<td>Median sampling interval</td><td>0.25 s</td>" in page
    assert "<h2>Rows per class</h2>" in page
    assert "<p>No gaps.</p>" in page
    assert summary["row_count"] == 42079
    assert summary["sampling_interval_seconds"] == pytest.approx(0.25)
    assert summary["label_counts"] == {"-1": 300, "0": 21979, "1": 8400, "2": 11400}
    assert summary["correlations"]["ph1"]["ph2"] == pytest.approx(0.999438, abs=1e-6)
    assert summary["statistics"]["ph1"]["max"] == pytest.approx(10732.4)


def test_profile_writes_png_files(profile_data, sample_parquet, tmp_path, p2e_home):
    profile_data.profile(sample_parquet, tmp_path / "report", SIGNALS)

    names = sorted(path.name for path in (tmp_path / "report").iterdir())
    assert names == sorted([*FIGURES, "report.html", "summary.json"])
    for name in FIGURES:
        image = matplotlib.image.imread(tmp_path / "report" / name)
        assert image.shape[0] >= 300
        assert image.shape[1] >= 400
        # A blank figure would be one colour; a plot has many.
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20


def test_profile_reports_gaps(
    profile_data, sample_frame, tmp_path, write_data_folder, p2e_home
):
    with_gap = sample_frame.drop(index=range(20000, 20400)).reset_index(drop=True)
    data = write_data_folder(with_gap, tmp_path / "in")

    summary = profile_data.profile(data, tmp_path / "report", SIGNALS)

    assert summary["gap_count"] == 1
    assert summary["gaps"][0]["seconds"] == pytest.approx(100.0)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<td>2019-02-08T08:59:39.943000+00:00</td>" in page


def test_profile_logs_figures_to_mlflow(
    profile_data, sample_parquet, tmp_path, p2e_home, monkeypatch
):
    import mlflow

    monkeypatch.chdir(tmp_path)
    tracking_uri = f"sqlite:///{p2e_home / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri)
    experiment_id = client.create_experiment(
        "data-asset", artifact_location=str(p2e_home / "mlartifacts")
    )
    run = client.create_run(experiment_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)

    profile_data.profile(sample_parquet, tmp_path / "report", SIGNALS)

    logged = client.list_artifacts(run.info.run_id, "data_profile")
    assert sorted(item.path for item in logged) == sorted(
        f"data_profile/{name}" for name in [*FIGURES, "report.html", "summary.json"]
    )
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["row_count"] == 42079
    assert metrics["sampling_interval_seconds"] == pytest.approx(0.25)
    assert metrics["gap_count"] == 0


def test_downsample_keeps_spikes(profile_figures):
    values = np.zeros(10_000)
    values[4321] = 99.0
    times = pd.Series(pd.date_range("2024-01-01", periods=10_000, freq="250ms"))

    points = profile_figures.downsample(times, pd.Series(values), 100)

    assert len(points) == 100
    assert points["max"].max() == 99.0
    assert points["min"].min() == 0.0
    assert points["time"].iloc[1] == times.iloc[100]


def test_profile_rejects_missing_column(
    profile_data, sample_parquet, tmp_path, p2e_home
):
    with pytest.raises(
        profile_data.ProfileError,
        match=r"Column\(s\) \['ph4'\] not found in .*si-sample\.parquet",
    ):
        profile_data.profile(sample_parquet, tmp_path / "report", ["ph1", "ph4"])


def test_profile_main_writes_report(
    profile_data, sample_frame, tmp_path, write_data_folder, p2e_home
):
    data = write_data_folder(sample_frame.iloc[:5000], tmp_path / "in")

    code = profile_data.main(
        ["--data", str(data), "--report", str(tmp_path / "report"),
         "--max-plot-points", "500"]
    )  # fmt: skip

    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert code == 0
    assert summary["row_count"] == 5000
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000
