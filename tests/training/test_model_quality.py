"""Quality of the default state identifier against the labels of the sample data.

The headline is the lag-corrected adjusted Rand index: window ``i`` is compared
with the label of window ``i + 1``, because the sample labels describe the
window before the one they are written on. The agreement peaks at a shift of
exactly 300 rows. The plain score is asserted too, so a change in either shows.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def default_report(evaluator, default_model_dir, labeled_frame):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        pipeline, metadata = evaluator.load_state_identifier(default_model_dir)
    features, states = evaluator.compute_states(pipeline, labeled_frame)
    return evaluator.evaluate(features, states, metadata, labeled_frame, "class", lag=1)


def test_default_model_lag_corrected_adjusted_rand(default_report):
    metrics = default_report["metrics"]

    assert metrics["adjusted_rand_lag_corrected"] >= 0.85
    assert metrics["adjusted_rand_lag_corrected"] == pytest.approx(0.986, abs=0.001)
    assert metrics["accuracy_lag_corrected"] == pytest.approx(139 / 140)


def test_default_model_plain_scores(default_report):
    metrics = default_report["metrics"]

    assert metrics["adjusted_rand_plain"] == pytest.approx(0.610, abs=0.001)
    assert metrics["accuracy_plain"] == pytest.approx(113 / 139)


def test_default_model_cluster_scores(default_report):
    metrics = default_report["metrics"]

    assert metrics["n_windows"] == 140
    assert metrics["silhouette"] == pytest.approx(0.624, abs=0.001)
    assert metrics["davies_bouldin"] == pytest.approx(0.638, abs=0.001)


def test_default_model_states_map_to_labels(default_report):
    evaluation = default_report["evaluation"]

    assert evaluation["state_counts"] == {"0": 74, "1": 39, "2": 27}
    assert evaluation["state_to_label_lag_corrected"] == {"0": 0, "1": 2, "2": 1}
    assert evaluation["labeled_windows_plain"] == 139
    assert evaluation["labeled_windows_lag_corrected"] == 140


def test_default_model_generalises_to_held_out_windows(
    trainer, evaluator, labeled_frame
):
    """Trained on the first half of the rows, scored on the second half only."""
    half = 70 * 300
    pipeline = trainer.train_state_identifier(labeled_frame.iloc[:half])
    held_out = labeled_frame.iloc[half:].reset_index(drop=True)
    features, states = evaluator.compute_states(pipeline, held_out)

    report = evaluator.evaluate(
        features, states, {"window_size": 300, "step": 300}, held_out, "class", lag=1
    )

    assert report["metrics"]["n_windows"] == 70
    assert report["metrics"]["adjusted_rand_lag_corrected"] >= 0.85
