"""Window features of the state identifier, shared by training and the edge runtime.

The model splits the phase signals into windows (window ``i`` covers rows
``[i * step, i * step + window_size)``), computes nine statistics per signal in
each window and clusters the scaled statistics into machine states. The trained
model is a scikit-learn Pipeline whose first stage, ``WindowFeatures``, turns
raw rows into one feature row per complete window. The edge runtime calls
``window_features`` on one ``(window_size, n_signals)`` array at a time, which
returns exactly the numbers that ``batch_window_features`` returns for the same
window in a batch.

This module needs only numpy and scikit-learn, so that it can be loaded beside
the pickled model without MLflow or pandas, as on the edge device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans

DEFAULT_SIGNAL_COLUMNS = ("ph1", "ph2", "ph3")
QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
STATISTICS = ("mean", "std", "min", "max", "q10", "q25", "q50", "q75", "q90")
MIN_WINDOW_SIZE = 2


def feature_names(signal_columns: Sequence[str]) -> list[str]:
    """Return the window feature names in output order, statistic by statistic."""
    return [f"{column}_{stat}" for stat in STATISTICS for column in signal_columns]


def count_windows(n_rows: int, window_size: int, step: int) -> int:
    """Return how many complete windows ``n_rows`` rows contain."""
    if n_rows < window_size:
        return 0
    return (n_rows - window_size) // step + 1


def rows_needed(n_windows: int, window_size: int, step: int) -> int:
    """Return the fewest rows that contain ``n_windows`` complete windows."""
    return window_size + (n_windows - 1) * step


def sliding_windows(values: np.ndarray, window_size: int, step: int) -> np.ndarray:
    """Return a read-only ``(n_windows, window_size, n_signals)`` view of ``values``.

    ``values`` is a ``(n_rows, n_signals)`` array in time order. Rows after the
    last complete window are left out.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array of rows by signals, got shape {values.shape}."
        )
    if values.shape[0] < window_size:
        return np.empty((0, window_size, values.shape[1]), dtype=values.dtype)
    view = np.lib.stride_tricks.sliding_window_view(values, window_size, axis=0)
    # sliding_window_view puts the window axis last: (n, n_signals, window_size).
    return view[::step].transpose(0, 2, 1)


def batch_window_features(windows: np.ndarray) -> np.ndarray:
    """Compute the features of many windows at once.

    ``windows`` is a ``(n_windows, window_size, n_signals)`` array. Returns a
    ``(n_windows, 9 * n_signals)`` float64 array ordered as ``feature_names``:
    mean, population standard deviation, min, max and the 10/25/50/75/90 %
    quantiles (linear interpolation, numpy's default) of each signal.
    """
    # One memory layout for every caller: numpy sums in a layout-dependent order.
    windows = np.ascontiguousarray(windows, dtype=np.float64)
    if windows.ndim != 3:
        raise ValueError(
            "Expected windows as a 3-D array (n_windows, window_size, n_signals), "
            f"got shape {windows.shape}."
        )
    window_size = windows.shape[1]
    if window_size < MIN_WINDOW_SIZE:
        raise ValueError(
            f"A window needs at least {MIN_WINDOW_SIZE} rows, got {window_size}."
        )
    ordered = np.sort(windows, axis=1)
    mean = windows.mean(axis=1)
    std = windows.std(axis=1)
    quantiles = _sorted_quantiles(ordered, QUANTILES)
    parts = [mean, std, ordered[:, 0, :], ordered[:, -1, :], *quantiles]
    return np.concatenate(parts, axis=1)


def window_features(window: np.ndarray) -> np.ndarray:
    """Compute the features of one ``(window_size, n_signals)`` window.

    Returns a ``(9 * n_signals,)`` array equal to the matching row of
    ``batch_window_features``; the edge runtime calls this once per window.
    """
    window = np.asarray(window, dtype=np.float64)
    if window.ndim != 2:
        raise ValueError(
            "Expected one window as a 2-D array (window_size, n_signals), got shape "
            f"{window.shape}."
        )
    return batch_window_features(window[np.newaxis])[0]


def _sorted_quantiles(ordered: np.ndarray, levels: Sequence[float]) -> list[np.ndarray]:
    """Interpolate quantiles along axis 1 of an already sorted array.

    Uses the same rule as ``np.quantile(..., method="linear")`` but sorts once for
    all levels and for min and max.
    """
    last = ordered.shape[1] - 1
    result = []
    for level in levels:
        position = level * last
        below = int(np.floor(position))
        above = min(below + 1, last)
        fraction = position - below
        low = ordered[:, below, :]
        high = ordered[:, above, :]
        result.append(low + (high - low) * fraction)
    return result


class WindowFeatures(TransformerMixin, BaseEstimator):
    """Pipeline stage that turns raw rows into one feature row per complete window.

    ``transform`` takes a DataFrame containing ``signal_columns`` (other columns
    are ignored) or a ``(n_rows, n_signals)`` array in the same column order,
    with rows in time order.
    """

    def __init__(
        self,
        window_size: int = 300,
        step: int = 300,
        signal_columns: Sequence[str] = DEFAULT_SIGNAL_COLUMNS,
    ):
        self.window_size = window_size
        self.step = step
        self.signal_columns = signal_columns

    def fit(self, X, y=None):
        self._check_parameters()
        self.feature_names_out_ = np.array(feature_names(self.signal_columns))
        return self

    def transform(self, X) -> np.ndarray:
        self._check_parameters()
        values = self.signal_values(X)
        if values.shape[0] < self.window_size:
            raise ValueError(
                f"Got {values.shape[0]} rows, fewer than window_size="
                f"{self.window_size}: pass at least {self.window_size} rows for one "
                "state."
            )
        return batch_window_features(
            sliding_windows(values, self.window_size, self.step)
        )

    def window_features(self, window: np.ndarray) -> np.ndarray:
        """Compute the features of one window, checking its shape against this stage."""
        window = np.asarray(window, dtype=np.float64)
        expected = (self.window_size, len(self.signal_columns))
        if window.shape != expected:
            raise ValueError(
                f"Expected one window of shape {expected} (window_size, signals "
                f"{list(self.signal_columns)}), got {window.shape}."
            )
        return window_features(window)

    def batch_window_features(self, windows: np.ndarray) -> np.ndarray:
        return batch_window_features(windows)

    def count_windows(self, n_rows: int) -> int:
        return count_windows(n_rows, self.window_size, self.step)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(feature_names(self.signal_columns), dtype=object)

    def signal_values(self, X) -> np.ndarray:
        """Return the signal columns of ``X`` as float64, rejecting missing values."""
        columns = list(self.signal_columns)
        # Duck typing keeps pandas out of the edge package, which loads this
        # module but passes numpy arrays.
        if hasattr(X, "columns") and hasattr(X, "to_numpy"):
            missing = [column for column in columns if column not in X.columns]
            if missing:
                raise ValueError(
                    f"Missing signal columns {missing}; the data has columns "
                    f"{list(X.columns)}. Pass rows with columns {columns}."
                )
            values = X[columns].to_numpy(dtype=np.float64)
        else:
            values = np.asarray(X, dtype=np.float64)
            if values.ndim != 2 or values.shape[1] != len(columns):
                raise ValueError(
                    f"Expected an array of shape (n_rows, {len(columns)}) with the "
                    f"signals {columns} in this order, got shape {values.shape}."
                )
        bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if bad_rows.size:
            raise ValueError(
                f"{bad_rows.size} rows contain missing or infinite signal values (first "
                f"at row {bad_rows[0]}). Fill or drop them before computing states."
            )
        return values

    def _check_parameters(self) -> None:
        if (
            int(self.window_size) != self.window_size
            or self.window_size < MIN_WINDOW_SIZE
        ):
            raise ValueError(
                f"window_size must be an integer of at least {MIN_WINDOW_SIZE} rows, "
                f"got {self.window_size!r}."
            )
        if int(self.step) != self.step or self.step < 1:
            raise ValueError(
                f"step must be an integer of at least 1 row, got {self.step!r}."
            )
        if len(self.signal_columns) == 0:
            raise ValueError("signal_columns is empty; name at least one signal.")


class StateKMeans(KMeans):
    """KMeans whose ``predict`` returns int64 states, the ``long`` of the signature."""

    def predict(self, X) -> np.ndarray:
        return super().predict(X).astype(np.int64)
