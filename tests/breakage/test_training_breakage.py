"""Odd data and settings given to the training components."""

from __future__ import annotations

import numpy as np
import pandas as pd
from breakage_helpers import load_script

evaluate_model = load_script("evaluate_model")


def test_evaluate_accepts_string_class_labels():
    labels = pd.Series(["off"] * 900 + ["run"] * 900)
    states = np.array([0, 0, 0, 1, 1, 1])

    metrics, details = evaluate_model.label_metrics(labels, states, 300, 300, 0)

    assert metrics["accuracy_plain"] == 1.0
    assert metrics["adjusted_rand_plain"] == 1.0
    assert details["labeled_windows_plain"] == 6
    assert details["state_to_label_plain"] == {"0": "off", "1": "run"}


def test_evaluate_plots_string_class_labels(tmp_path):
    data = pd.DataFrame(
        {
            "ph1": np.r_[np.zeros(900), np.ones(900)],
            "class": ["off"] * 900 + ["run"] * 900,
        }
    )
    path = tmp_path / "states.png"

    evaluate_model.plot_states_over_time(
        data, ["ph1"], np.array([0, 0, 0, 1, 1, 1]), 300, 300, "class", path
    )

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
