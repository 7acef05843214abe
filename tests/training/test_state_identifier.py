"""Tests of the window features and of the trained model's predict contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import state_identifier as si

SIGNALS = ["ph1", "ph2", "ph3"]


@pytest.fixture(scope="module")
def signal_values(labeled_frame) -> np.ndarray:
    return labeled_frame[SIGNALS].to_numpy()


@pytest.fixture(scope="module")
def default_pipeline(trainer, labeled_frame):
    return trainer.train_state_identifier(labeled_frame)


@pytest.mark.parametrize(
    "layout",
    [np.ascontiguousarray, np.asfortranarray, lambda rows: rows.tolist()],
    ids=["c-order", "fortran-order", "list"],
)
def test_batch_features_equal_single_window(signal_values, layout):
    windows = si.sliding_windows(signal_values, 300, 300)

    batch = si.batch_window_features(windows)
    single = np.stack(
        [
            si.window_features(layout(signal_values[index * 300 : (index + 1) * 300]))
            for index in range(len(windows))
        ]
    )

    assert batch.shape == (140, 27)
    np.testing.assert_array_equal(single, batch)


def test_features_match_numpy_statistics(signal_values):
    window = signal_values[600:900]

    features = dict(zip(si.feature_names(SIGNALS), si.window_features(window)))

    for column_index, column in enumerate(SIGNALS):
        values = window[:, column_index]
        assert features[f"{column}_mean"] == pytest.approx(values.mean())
        assert features[f"{column}_std"] == pytest.approx(values.std())
        assert features[f"{column}_min"] == values.min()
        assert features[f"{column}_max"] == values.max()
        for level in (10, 25, 50, 75, 90):
            expected = np.quantile(values, level / 100)
            assert features[f"{column}_q{level}"] == pytest.approx(expected, rel=1e-12)


def test_feature_names_statistic_by_statistic():
    names = si.feature_names(SIGNALS)

    assert len(names) == 27
    assert names[:6] == [
        "ph1_mean",
        "ph2_mean",
        "ph3_mean",
        "ph1_std",
        "ph2_std",
        "ph3_std",
    ]
    assert names[-1] == "ph3_q90"


@pytest.mark.parametrize(
    ("n_rows", "window_size", "step", "expected"),
    [
        (299, 300, 300, 0),
        (300, 300, 300, 1),
        (599, 300, 300, 1),
        (601, 300, 300, 2),
        (42079, 300, 300, 140),
        (1001, 300, 150, 5),
        (10, 2, 3, 3),
    ],
)
def test_window_count_for_odd_lengths(n_rows, window_size, step, expected):
    values = np.zeros((n_rows, 3))

    assert si.count_windows(n_rows, window_size, step) == expected
    assert si.sliding_windows(values, window_size, step).shape == (
        expected,
        window_size,
        3,
    )


def test_sliding_windows_start_every_step(signal_values):
    windows = si.sliding_windows(signal_values, 7, 5)

    np.testing.assert_array_equal(windows[3], signal_values[15:22])


@pytest.mark.parametrize("n_rows", [300, 599, 601, 1000, 42079])
def test_predict_one_state_per_complete_window(default_pipeline, labeled_frame, n_rows):
    states = default_pipeline.predict(labeled_frame.iloc[:n_rows])

    assert states.shape == (n_rows // 300,)
    assert states.dtype == np.int64
    assert set(states.tolist()) <= {0, 1, 2}


def test_predict_window_matches_rows_alone(default_pipeline, labeled_frame):
    states = default_pipeline.predict(labeled_frame)

    for index in (0, 5, 68, 139):
        rows = labeled_frame.iloc[index * 300 : index * 300 + 300]
        assert default_pipeline.predict(rows).tolist() == [states[index]]


def test_predict_with_overlapping_windows(trainer, labeled_frame):
    pipeline = trainer.train_state_identifier(labeled_frame, window_size=300, step=150)

    states = pipeline.predict(labeled_frame.iloc[:1001])

    assert states.shape == (5,)


def test_predict_accepts_array_in_signal_order(default_pipeline, labeled_frame):
    from_frame = default_pipeline.predict(labeled_frame)
    from_array = default_pipeline.predict(labeled_frame[SIGNALS].to_numpy())

    np.testing.assert_array_equal(from_array, from_frame)


def test_predict_rejects_fewer_rows_than_window(default_pipeline, labeled_frame):
    with pytest.raises(ValueError, match="Got 299 rows, fewer than window_size=300"):
        default_pipeline.predict(labeled_frame.iloc[:299])


def test_predict_rejects_missing_signal_column(default_pipeline, labeled_frame):
    with pytest.raises(ValueError, match=r"Missing signal columns \['ph3'\]"):
        default_pipeline.predict(labeled_frame.drop(columns="ph3"))


def test_predict_rejects_missing_values(default_pipeline, labeled_frame):
    frame = labeled_frame.iloc[:600].copy()
    frame.loc[frame.index[42], "ph2"] = np.nan

    with pytest.raises(
        ValueError, match="1 rows contain missing or infinite .* row 42"
    ):
        default_pipeline.predict(frame)


def test_stage_window_features_rejects_wrong_shape(default_pipeline):
    stage = default_pipeline.named_steps["windows"]

    with pytest.raises(ValueError, match=r"Expected one window of shape \(300, 3\)"):
        stage.window_features(np.zeros((299, 3)))


def test_stage_window_features_equal_module_function(default_pipeline, signal_values):
    stage = default_pipeline.named_steps["windows"]
    window = signal_values[:300]

    np.testing.assert_array_equal(
        stage.window_features(window), si.window_features(window)
    )


def test_window_features_rejects_one_row():
    with pytest.raises(ValueError, match="A window needs at least 2 rows, got 1"):
        si.window_features(np.zeros((1, 3)))


def test_transform_output_has_feature_names(default_pipeline):
    names = default_pipeline.named_steps["windows"].get_feature_names_out()

    assert list(names) == si.feature_names(SIGNALS)


def test_signal_values_ignore_extra_columns(default_pipeline):
    frame = pd.DataFrame({"ph3": [3.0], "note": ["x"], "ph1": [1.0], "ph2": [2.0]})

    values = default_pipeline.named_steps["windows"].signal_values(frame)

    np.testing.assert_array_equal(values, [[1.0, 2.0, 3.0]])
