"""Edge inference cost of the state identifier entrypoint, in process.

Trains the state identifier on ``si-sample.parquet`` (42,079 rows) with the
training component's functions, stages the edge component as package_model
does, imports its ``entrypoint.py`` and times over all rows:

- streaming: one ``process_input`` call per row, window 300, step 300;
- batch: lists of 300 rows per call, and all rows in one call;
- step 1: a prediction for every row (streaming and one batch);
- a single NumPy pass over the same rows (features of all windows at once and
  one vectorized prediction), the floor for comparison.

    .venv/bin/python benchmarks/edge_inference.py [--repeat 5]

Prints rows per second (best of ``--repeat`` runs) and checks that every
variant returns the model's own states.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from plant2edge import settings

REPO = settings.repo_root()
for folder in ("package_model", "train_state_identifier"):
    sys.path.insert(0, str(REPO / "components" / folder))

import edge_pipeline
import model_source
import sample_rows
import train_state_identifier as trainer

SIGNALS = ["ph1", "ph2", "ph3"]
WINDOW = 300


def build_component(frame: pd.DataFrame, work: Path):
    """Train, save and stage the model; return (component folder, fitted pipeline)."""
    pipeline = trainer.train_state_identifier(frame)
    manifest = {"name": "state-identifier-data", "version": "1"}
    metadata = trainer.model_metadata(pipeline, frame, manifest, random_seed=0)
    trainer.save_state_identifier(pipeline, work / "model", metadata)
    source = model_source.read_model("state-identifier", "1", work / "model")
    loaded = model_source.load_pipeline(source)
    component = work / "component"
    edge_pipeline.stage_component(source, loaded, SIGNALS, component)
    return component, loaded


def best_time(function, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def streaming(component: Path, rows: list, step: int):
    def run():
        entrypoint = fresh(component, step)
        process = entrypoint.process_input
        return [out["state"] for out in map(process, rows) if out is not None]

    return run


def batched(component: Path, rows: list, step: int, size: int):
    def run():
        entrypoint = fresh(component, step)
        process = entrypoint.process_input
        outputs = [process(rows[i : i + size]) for i in range(0, len(rows), size)]
        return [out["state"] for out in outputs if out is not None]

    return run


_modules: dict = {}


def fresh(component: Path, step: int):
    """An entrypoint module with empty buffers (imported once, then reset)."""
    key = str(component)
    if key not in _modules:
        _modules[key] = sample_rows.load_entrypoint(component)
    module = _modules[key]
    module.update_parameters({"window_step": step + 1})
    module.update_parameters({"window_step": step})
    return module


def numpy_pass(pipeline, values: np.ndarray, step: int):
    def run():
        stage = pipeline[0]
        windows = np.lib.stride_tricks.sliding_window_view(values, WINDOW, axis=0)
        windows = windows[::step].transpose(0, 2, 1)
        features = stage.batch_window_features(windows)
        scaler, kmeans = pipeline[1], pipeline[2]
        x = (features - scaler.mean_) / scaler.scale_
        centers = kmeans.cluster_centers_
        distances = np.einsum("ij,ij->i", centers, centers) - 2.0 * x @ centers.T
        return distances.argmin(axis=1).tolist()

    return run


def bare_calls(rows: list):
    """One call of an empty function per row: the floor of any streaming entrypoint."""

    def process_input(data):
        return None

    def run():
        return [out for out in map(process_input, rows) if out is not None]

    return run


def expected_states(pipeline, frame: pd.DataFrame, step: int) -> list:
    stage = copy.deepcopy(pipeline[0]).set_params(step=step)
    return pipeline[1:].predict(stage.transform(frame[SIGNALS])).tolist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per variant")
    args = parser.parse_args(argv)

    data = settings.datasets_dir() / "state-identifier" / "si-sample.parquet"
    frame = pd.read_parquet(data)
    rows = frame[SIGNALS].to_dict("records")
    values = frame[SIGNALS].to_numpy(np.float64)
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as tmp:
        component, pipeline = build_component(frame, Path(tmp))
        cases = [
            ("bare Python call per row", bare_calls(rows), None, args.repeat),
            ("streaming, step 300", streaming(component, rows, 300), 300, args.repeat),
            (
                "batch of 300 rows, step 300",
                batched(component, rows, 300, 300),
                300,
                args.repeat,
            ),
            (
                "one batch of all rows, step 300",
                batched(component, rows, 300, len(rows)),
                300,
                args.repeat,
            ),
            (
                "NumPy pass, step 300",
                numpy_pass(pipeline, values, 300),
                300,
                args.repeat,
            ),
            ("streaming, step 1", streaming(component, rows, 1), 1, 1),
            (
                "one batch of all rows, step 1",
                batched(component, rows, 1, len(rows)),
                1,
                1,
            ),
            ("NumPy pass, step 1", numpy_pass(pipeline, values, 1), 1, 1),
        ]
        expected = {300: expected_states(pipeline, frame, 300), 1: None}
        print(
            f"Edge inference over {len(rows):,} rows, window {WINDOW}; "
            f"Python {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'variant':34} {'seconds':>9} {'rows/s':>13} {'us/row':>8} {'states':>7}"
        )
        for name, function, step, repeat in cases:
            seconds, states = best_time(function, repeat)
            if step is None:
                print(
                    f"{name:34} {seconds:9.4f} {len(rows) / seconds:13,.0f} "
                    f"{seconds / len(rows) * 1e6:8.3f}"
                )
                continue
            if expected.get(step) is None:
                expected[step] = expected_states(pipeline, frame, step)
            want = expected[step] if "one batch" not in name else expected[step][-1:]
            ok = states == want
            print(
                f"{name:34} {seconds:9.4f} {len(rows) / seconds:13,.0f} "
                f"{seconds / len(rows) * 1e6:8.3f} {len(states):7d}"
                + ("" if ok else "  MISMATCH with the model")
            )
            if not ok:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
