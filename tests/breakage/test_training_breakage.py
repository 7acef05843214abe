"""Odd data and settings given to the training components."""

from __future__ import annotations

import numpy as np
import pandas as pd
from breakage_helpers import load_script

evaluate_model = load_script("evaluate_model")
train_state_identifier = load_script("train_state_identifier")


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


def test_train_rejoins_signal_columns_with_spaces():
    # Azure ML and the local runner put "Phase 1,Phase 2" into the command
    # unquoted, so the shell splits it at the spaces.
    args = train_state_identifier.parse_args(
        ["--data", "d", "--model", "m", "--signal-columns", "Phase", "1,Phase", "2"]
    )

    columns = train_state_identifier.parse_signal_columns(args.signal_columns)

    assert columns == ["Phase 1", "Phase 2"]


def test_evaluate_rejoins_label_column_with_spaces():
    args = evaluate_model.parse_args(
        ["--model", "m", "--data", "d", "--metrics", "x", "--plots", "p"]
        + ["--label-column", "machine", "state"]
    )

    assert args.label_column == "machine state"
