"""AI Inference Server entrypoint of the state identifier edge package.

AI Inference Server calls ``process_input(data)`` once per input row (a dict
with one value per input variable) or, when the component takes batch input,
once per list of rows. Rows are buffered into windows of ``window_size`` rows;
window ``i`` covers rows ``[i * step, i * step + window_size)`` counted from the
first row after start-up, as in training. A call returns one output dict when it
completes a window (for a batch: the last window it completes) and ``None``
otherwise.

Per row the streaming path only stores the dict in a preallocated list. At a
window boundary the rows are converted to one float64 array, and the model's
own first pipeline stage computes the window features. The state comes from
the fitted parameters in plain numpy when the remaining stages are known
(StandardScaler, MinMaxScaler, KMeans), and from scikit-learn otherwise.

The files beside this module: ``edge_config.json`` (written by the packaging
step), the pickled scikit-learn Pipeline and the model's code modules.
"""

from __future__ import annotations

import json
import pickle
import sys
from itertools import chain
from operator import itemgetter
from pathlib import Path

import numpy as np

try:  # AI Inference Server provides log_module inside its Python runtime only.
    from log_module import LogModule

    _log = LogModule()
except ImportError:
    import logging

    _log = logging.getLogger("state_identifier.entrypoint")

HERE = Path(__file__).resolve().parent
CONFIG = json.loads((HERE / "edge_config.json").read_text(encoding="utf-8"))

_OUTPUT_CASTS = {"Integer": int, "Double": float, "String": str, "Boolean": bool}


def _load_pipeline(config: dict):
    code_dir = str(HERE / config["code_dir"])
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)
    with open(HERE / config["model_file"], "rb") as file:
        return pickle.load(file)


class FastPredictor:
    """Predict states from window features with the fitted parameters in numpy.

    Gives the same states as ``pipeline[1:].predict`` for the supported stages
    (the packaging tests compare both on every window of the sample data) while
    skipping scikit-learn's per-call input validation.
    """

    def __init__(self, stages: list):
        self.transforms = [_compile_transform(stage) for stage in stages[:-1]]
        centers = np.asarray(stages[-1].cluster_centers_, dtype=np.float64)
        self.centers_t = np.ascontiguousarray(centers.T)
        # Same distance formula as scikit-learn's KMeans.predict: |c|^2 - 2 x.c
        self.centers_sq = np.einsum("ij,ij->i", centers, centers)

    @staticmethod
    def supports(stages: list) -> bool:
        # Subclasses count too, because the state identifier's StateKMeans only
        # casts the labels to int64. The validation step compares the package with
        # the model's own predict, so a subclass that predicts otherwise fails there.
        kinds = {cls.__name__ for cls in type(stages[-1]).__mro__}
        if not kinds & {"KMeans", "MiniBatchKMeans"}:
            return False
        return all(_compile_transform(stage) is not None for stage in stages[:-1])

    def predict(self, features: np.ndarray) -> np.ndarray:
        x = features
        for transform in self.transforms:
            x = transform(x)
        distances = self.centers_sq - 2.0 * (x @ self.centers_t)
        return distances.argmin(axis=1)


def _compile_transform(stage):
    kind = type(stage).__name__
    if kind == "StandardScaler":
        mean = stage.mean_ if stage.with_mean else None
        scale = stage.scale_ if stage.with_std else None

        def standardize(x):
            if mean is not None:
                x = x - mean
            if scale is not None:
                x = x / scale
            return x

        return standardize
    if kind == "MinMaxScaler":
        scale, offset = stage.scale_, stage.min_
        low, high = stage.feature_range
        clip = stage.clip

        def min_max(x):
            x = x * scale + offset
            return np.clip(x, low, high) if clip else x

        return min_max
    return None


class StateModel:
    """The loaded Pipeline split into the window feature stage and the predictor."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.feature_stage = pipeline.steps[0][1]
        rest = [step for _, step in pipeline.steps[1:]]
        self.fast = (
            FastPredictor(rest) if rest and FastPredictor.supports(rest) else None
        )
        self.rest = pipeline[1:]

    def window_features(self, window: np.ndarray) -> np.ndarray:
        return self.feature_stage.window_features(window)

    def batch_window_features(self, windows: np.ndarray) -> np.ndarray:
        batch = getattr(self.feature_stage, "batch_window_features", None)
        if batch is not None:
            return batch(windows)
        return np.stack([self.window_features(window) for window in windows])

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.fast is not None:
            return self.fast.predict(features)
        return np.asarray(self.rest.predict(features))


def _range_indices(stage) -> tuple[list[int], list[int]] | None:
    """Positions of each signal's min and max among the window features, if named."""
    try:
        names = [str(name) for name in stage.get_feature_names_out()]
        lows = [names.index(f"{signal}_min") for signal in SIGNALS]
        highs = [names.index(f"{signal}_max") for signal in SIGNALS]
    except (AttributeError, TypeError, ValueError):
        return None
    return lows, highs


MODEL = StateModel(_load_pipeline(CONFIG))
SIGNALS = list(CONFIG["signal_columns"])
N_SIGNALS = len(SIGNALS)
WINDOW_SIZE = int(CONFIG["window_size"])
STEP_PARAMETER = CONFIG["step_parameter"]
OUTPUT_NAME = CONFIG["output"]["name"]
OUTPUT_CAST = _OUTPUT_CASTS[CONFIG["output"]["type"]]
RANGE_METRICS = [f"{signal}_range" for signal in SIGNALS]
RANGE_INDICES = _range_indices(MODEL.feature_stage)

_get_signals = itemgetter(*SIGNALS)
_step = int(CONFIG["step"])
# Rows not yet converted, stored as received. Filled up to _boundary, then emptied.
_rows: list = [None] * max(WINDOW_SIZE, _step)
_count = 0
# Converted rows that begin the next window (windows overlap when step < window).
_tail = np.empty((0, N_SIGNALS))
# Rows to drop before the next window starts (when step > window).
_skip = 0
_boundary = WINDOW_SIZE


def process_input(data):
    """Buffer one row (a dict) or a batch (a list of dicts); return a state or None."""
    global _count
    if data.__class__ is list:
        return _process_batch(data)
    _rows[_count] = data
    _count += 1
    if _count == _boundary:
        return _complete_window()
    return None


def update_parameters(params: dict) -> None:
    """Apply the window step pipeline parameter.

    A new step restarts the windowing: buffered rows are dropped and the next
    window starts with the next row, so that all windows after the change start
    the new step apart.
    """
    global _step, _rows, _count, _tail, _skip, _boundary
    if STEP_PARAMETER not in params:
        return
    value = params[STEP_PARAMETER]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _log.error(
            f"Ignoring {STEP_PARAMETER}={value!r}: it must be an integer of at least 1. "
            f"Keeping {STEP_PARAMETER}={_step}."
        )
        return
    if value == _step:
        return
    _step = value
    _rows = [None] * max(WINDOW_SIZE, _step)
    _count = 0
    _tail = np.empty((0, N_SIGNALS))
    _skip = 0
    _boundary = WINDOW_SIZE
    _log.info(f"{STEP_PARAMETER} set to {_step}; windowing restarts with the next row")


def _complete_window():
    global _count, _tail, _skip, _boundary
    rows = _rows[_skip:_count]
    _count = 0
    new = _to_array(rows)
    window = new if not len(_tail) else np.concatenate((_tail, new))
    _tail, _skip = _next_window_start(window)
    _boundary = _skip + WINDOW_SIZE - len(_tail)
    if not np.isfinite(window).all():
        _log.warning(f"Skipping a window with missing or infinite values in {SIGNALS}")
        return None
    features = MODEL.window_features(window)
    state = MODEL.predict(features[np.newaxis])[0]
    return _output(state, window, features)


def _process_batch(batch: list):
    global _count, _tail, _skip, _boundary
    rows = _rows[:_count] + batch
    _count = 0
    if len(rows) <= _skip:
        _skip -= len(rows)
        _boundary = _skip + WINDOW_SIZE - len(_tail)
        return None
    values = _to_array(rows[_skip:])
    history = values if not len(_tail) else np.concatenate((_tail, values))
    n_windows = (
        0 if len(history) < WINDOW_SIZE else (len(history) - WINDOW_SIZE) // _step + 1
    )
    if n_windows == 0:
        _rows[: len(rows) - _skip] = rows[_skip:]
        _count = len(rows) - _skip
        _skip = 0
        _boundary = WINDOW_SIZE - len(_tail)
        return None
    windows = np.lib.stride_tricks.sliding_window_view(history, WINDOW_SIZE, axis=0)
    windows = windows[: n_windows * _step : _step].transpose(0, 2, 1)
    finite = np.isfinite(windows).all(axis=(1, 2))
    last = history[(n_windows - 1) * _step : (n_windows - 1) * _step + WINDOW_SIZE]
    consumed = n_windows * _step
    if consumed <= len(history):
        _tail, _skip = history[consumed:].copy(), 0
    else:
        _tail, _skip = np.empty((0, N_SIGNALS)), consumed - len(history)
    _boundary = _skip + WINDOW_SIZE - len(_tail)
    if not finite[-1]:
        _log.warning(f"Skipping a window with missing or infinite values in {SIGNALS}")
        return None
    features = MODEL.batch_window_features(windows[-1:])
    state = MODEL.predict(features)[0]
    return _output(state, last, features[0])


def _next_window_start(window: np.ndarray):
    """Return the (tail, skip) state after ``window`` has been emitted."""
    if _step < WINDOW_SIZE:
        return window[_step:].copy(), 0
    return np.empty((0, N_SIGNALS)), _step - WINDOW_SIZE


def _to_array(rows: list) -> np.ndarray:
    try:
        if N_SIGNALS == 1:
            flat = map(_get_signals, rows)
        else:
            flat = chain.from_iterable(map(_get_signals, rows))
        values = np.fromiter(flat, dtype=np.float64, count=len(rows) * N_SIGNALS)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(_describe_bad_row(rows)) from exc
    return values.reshape(len(rows), N_SIGNALS)


def _describe_bad_row(rows: list) -> str:
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            return (
                f"Input row {index} of the window is {type(row).__name__}, not a dict."
            )
        missing = [signal for signal in SIGNALS if signal not in row]
        if missing:
            return (
                f"Input row {index} of the window lacks {missing}; it has "
                f"{sorted(row)}. Every row needs the inputs {SIGNALS}."
            )
        for signal in SIGNALS:
            try:
                float(row[signal])
            except (TypeError, ValueError):
                return (
                    f"Input row {index} of the window has {signal}={row[signal]!r}, "
                    "which is not a number."
                )
    return f"Input rows could not be converted to numbers for {SIGNALS}."


def _output(state, window: np.ndarray, features: np.ndarray) -> dict:
    result = {OUTPUT_NAME: OUTPUT_CAST(state)}
    if RANGE_INDICES is not None:
        # Reading min and max from the features avoids two more passes over the
        # window, which cost more than the prediction itself.
        ranges = features[RANGE_INDICES[1]] - features[RANGE_INDICES[0]]
    else:
        ranges = window.max(axis=0) - window.min(axis=0)
    for name, value in zip(RANGE_METRICS, ranges.tolist()):
        result[name] = f'{{"value": {value!r}}}'
    return result
