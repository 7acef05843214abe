"""The edge entrypoint, imported in process, against the model on the real data."""

from __future__ import annotations

import copy
import json

import edge_pipeline
import model_source
import numpy as np
import pandas as pd
import pytest
import sample_rows

MODEL_NAME = "state-identifier"
SIGNALS = ["ph1", "ph2", "ph3"]


@pytest.fixture(scope="session")
def model_pipeline(model_dir):
    source = model_source.read_model(MODEL_NAME, "1", model_dir)
    return source, model_source.load_pipeline(source)


@pytest.fixture(scope="session")
def component_dir(model_pipeline, tmp_path_factory):
    source, pipeline = model_pipeline
    dest = tmp_path_factory.mktemp("component") / "state_identifier"
    edge_pipeline.stage_component(source, pipeline, SIGNALS, dest)
    return dest


@pytest.fixture
def entrypoint(component_dir):
    """A freshly imported entrypoint module with empty buffers."""
    return sample_rows.load_entrypoint(component_dir)


@pytest.fixture(scope="session")
def rows(sample_frame) -> list[dict]:
    return sample_frame[SIGNALS].to_dict("records")


def stream(entrypoint, rows) -> list[dict]:
    return [out for out in map(entrypoint.process_input, rows) if out is not None]


def model_states(pipeline, frame: pd.DataFrame, step: int) -> list[int]:
    """States of the model's windows with another step, as training computes them."""
    stage = copy.deepcopy(pipeline[0]).set_params(step=step)
    return pipeline[1:].predict(stage.transform(frame[SIGNALS])).tolist()


def test_entrypoint_streams_same_states_as_model(entrypoint, rows, model_pipeline):
    _, pipeline = model_pipeline
    frame = pd.DataFrame(rows)

    outputs = stream(entrypoint, rows)

    expected = pipeline.predict(frame).tolist()
    assert len(expected) == len(rows) // 300
    assert [out["state"] for out in outputs] == expected
    assert all(type(out["state"]) is int for out in outputs)


def test_fast_predictor_matches_sklearn_on_every_window(
    entrypoint, model_pipeline, sample_frame
):
    _, pipeline = model_pipeline
    stage = copy.deepcopy(pipeline[0]).set_params(step=1)
    features = stage.transform(sample_frame[SIGNALS])

    fast = entrypoint.MODEL.fast.predict(features)

    assert entrypoint.MODEL.fast is not None
    assert len(features) == len(sample_frame) - 299
    np.testing.assert_array_equal(fast, pipeline[1:].predict(features))


def test_entrypoint_batch_returns_last_window_of_each_call(
    entrypoint, rows, model_pipeline
):
    _, pipeline = model_pipeline
    expected = pipeline.predict(pd.DataFrame(rows)).tolist()

    outputs = [
        entrypoint.process_input(rows[i : i + 300]) for i in range(0, len(rows), 300)
    ]

    states = [out["state"] for out in outputs if out is not None]
    assert states == expected
    assert outputs[-1] is None  # the last 79 rows complete no window


def test_entrypoint_full_batch_returns_last_state(entrypoint, rows, model_pipeline):
    _, pipeline = model_pipeline
    expected = pipeline.predict(pd.DataFrame(rows)).tolist()

    output = entrypoint.process_input(rows)

    assert output["state"] == expected[-1]


def test_entrypoint_mixes_batch_and_single_rows(entrypoint, rows, model_pipeline):
    _, pipeline = model_pipeline
    expected = pipeline.predict(pd.DataFrame(rows[:3000])).tolist()

    states = []
    for start in range(0, 3000, 250):
        chunk = rows[start : start + 250]
        if start % 500:
            states += [o["state"] for o in map(entrypoint.process_input, chunk) if o]
        else:
            output = entrypoint.process_input(chunk)
            states += [output["state"]] if output else []

    assert states == expected


@pytest.mark.parametrize("step", [1, 7, 150, 450])
def test_entrypoint_step_parameter_sets_window_starts(
    entrypoint, rows, model_pipeline, step
):
    _, pipeline = model_pipeline
    part = rows[:2400]
    expected = model_states(pipeline, pd.DataFrame(part), step)

    entrypoint.update_parameters({"window_step": step, "__AI_IS_debug": False})
    outputs = stream(entrypoint, part)

    assert [out["state"] for out in outputs] == expected


@pytest.mark.parametrize("step", [1, 150, 450])
def test_entrypoint_batch_with_step_parameter(entrypoint, rows, model_pipeline, step):
    _, pipeline = model_pipeline
    part = rows[:2400]
    expected = model_states(pipeline, pd.DataFrame(part), step)
    entrypoint.update_parameters({"window_step": step})

    states = []
    for start in range(0, len(part), 100):
        output = entrypoint.process_input(part[start : start + 100])
        if output is not None:
            states.append(output["state"])
    streamed = [o["state"] for o in stream(entrypoint, [])]

    assert streamed == []
    assert states == [expected[i] for i in _last_window_per_batch(len(part), 100, step)]


def _last_window_per_batch(n_rows: int, batch: int, step: int) -> list[int]:
    """Index of the last window completed within each batch of ``batch`` rows."""
    ends = [i * step + 300 for i in range((n_rows - 300) // step + 1)]
    result = []
    for stop in range(batch, n_rows + batch, batch):
        done = [i for i, end in enumerate(ends) if stop - batch < end <= stop]
        if done:
            result.append(done[-1])
    return result


def test_entrypoint_restarts_windows_when_step_changes(
    entrypoint, rows, model_pipeline
):
    _, pipeline = model_pipeline
    stream(entrypoint, rows[:450])  # one window, and 150 rows buffered

    entrypoint.update_parameters({"window_step": 100})
    outputs = stream(entrypoint, rows[450:1350])

    expected = model_states(pipeline, pd.DataFrame(rows[450:1350]), 100)
    assert [out["state"] for out in outputs] == expected


def test_entrypoint_ignores_invalid_step(entrypoint, rows, model_pipeline):
    _, pipeline = model_pipeline

    entrypoint.update_parameters({"window_step": 0})
    entrypoint.update_parameters({"window_step": "150"})
    outputs = stream(entrypoint, rows[:1200])

    assert [o["state"] for o in outputs] == pipeline.predict(
        pd.DataFrame(rows[:1200])
    ).tolist()


def test_entrypoint_metrics_are_json_ranges(entrypoint, rows):
    outputs = stream(entrypoint, rows[:300])

    window = np.array([[row[s] for s in SIGNALS] for row in rows[:300]])
    assert len(outputs) == 1
    for index, signal in enumerate(SIGNALS):
        metric = json.loads(outputs[0][f"{signal}_range"])
        assert metric == {"value": pytest.approx(np.ptp(window[:, index]))}


def test_entrypoint_rejects_row_missing_input(entrypoint, rows):
    broken = [dict(row) for row in rows[:300]]
    del broken[17]["ph2"]

    with pytest.raises(ValueError, match=r"row 17 of the window lacks \['ph2'\]"):
        stream(entrypoint, broken)


def test_entrypoint_rejects_non_numeric_value(entrypoint, rows):
    broken = [dict(row) for row in rows[:300]]
    broken[5]["ph1"] = "n/a"

    with pytest.raises(ValueError, match=r"row 5 of the window has ph1='n/a'"):
        entrypoint.process_input(broken)


def test_entrypoint_skips_window_with_nan(entrypoint, rows, model_pipeline):
    _, pipeline = model_pipeline
    broken = [dict(row) for row in rows[:600]]
    broken[10]["ph3"] = float("nan")

    outputs = [entrypoint.process_input(row) for row in broken]

    assert outputs[299] is None
    expected = pipeline.predict(pd.DataFrame(rows[:600])).tolist()
    assert outputs[599]["state"] == expected[1]


def test_entrypoint_works_without_log_module(entrypoint):
    assert entrypoint._log.__class__.__name__ == "Logger"
