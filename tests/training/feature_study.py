"""Compare window features, scalers and clusterers on the labeled sample data.

Not a test: it prints the Markdown tables behind docs/model.md.

    .venv/bin/python tests/training/feature_study.py [labeled.parquet]

Every configuration is unsupervised (the labels are only used to score it),
and all share the window definition of the model: windows of 300 rows side by
side. Scores use the same window labels and matching as the evaluate_model
component: plain (the label of the window itself) and lag-corrected (the label
of the next window).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "components" / "train_state_identifier"))
sys.path.insert(0, str(REPO_ROOT / "src"))

import state_identifier as si

from plant2edge import settings

SIGNALS = ["ph1", "ph2", "ph3"]
WINDOW = 300
LABEL_LAG_ROWS = 300


def load_evaluator():
    path = REPO_ROOT / "components" / "evaluate_model" / "evaluate_model.py"
    spec = importlib.util.spec_from_file_location("p2e_study_evaluate_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


evaluator = load_evaluator()


def score(frame: pd.DataFrame, states: np.ndarray, window: int, lag_rows: int) -> dict:
    """Return ARI and matched accuracy of ``states`` against labels shifted by rows."""
    labels = frame["class"].shift(-lag_rows) if lag_rows else frame["class"]
    window_label = evaluator.window_labels(labels, len(states), window, window)
    keep = np.array([label is not None for label in window_label])
    kept = np.array(list(window_label[keep]))
    accuracy, _ = evaluator.matched_accuracy(kept, states[keep])
    return {"ari": adjusted_rand_score(kept, states[keep]), "accuracy": accuracy}


def row(name: str, frame, features, states, window=WINDOW) -> dict:
    plain = score(frame, states, window, 0)
    lagged = score(frame, states, window, LABEL_LAG_ROWS)
    return {
        "configuration": name,
        "ARI plain": plain["ari"],
        "accuracy plain": plain["accuracy"],
        "ARI lag-corrected": lagged["ari"],
        "accuracy lag-corrected": lagged["accuracy"],
        "silhouette": silhouette_score(features, states),
    }


def summed_statistics(windows: np.ndarray) -> np.ndarray:
    """Statistics of the summed phases, in the style of the public reference."""
    total = windows.sum(axis=2)
    return np.column_stack(
        [
            total.mean(1),
            total.std(1),
            total.min(1),
            total.max(1),
            np.median(total, 1),
            stats.skew(total, 1),
            stats.kurtosis(total, 1),
            (total**2).sum(1),
            np.abs(np.diff(total, axis=1)).mean(1),
            total.var(1),
            total.sum(1),
        ]
    )


def band_power(windows: np.ndarray) -> np.ndarray:
    """Relative spectral power in five frequency bands per phase, and the centroid."""
    centred = windows - windows.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2
    frequencies = np.fft.rfftfreq(windows.shape[1])
    total = power.sum(axis=1) + 1e-12
    bands = [(0, 0.02), (0.02, 0.05), (0.05, 0.1), (0.1, 0.2), (0.2, 0.5)]
    parts = [
        power[:, (frequencies > low) & (frequencies <= high), :].sum(axis=1) / total
        for low, high in bands
    ]
    centroid = (power * frequencies[None, :, None]).sum(axis=1) / total
    return np.hstack([*parts, centroid])


def columns(features: np.ndarray, statistics: list[str]) -> np.ndarray:
    """Select per-phase statistics from the model's feature matrix by name."""
    names = si.feature_names(SIGNALS)
    wanted = [f"{signal}_{stat}" for stat in statistics for signal in SIGNALS]
    return features[:, [names.index(name) for name in wanted]]


def kmeans(features):
    return KMeans(3, n_init=10, random_state=0).fit_predict(features)


def feature_table(frame, windows) -> list[dict]:
    base = si.batch_window_features(windows)
    candidates: list[tuple[str, np.ndarray, Callable]] = [
        ("summed-phase statistics, MinMax (reference style)", summed_statistics(windows), MinMaxScaler),
        ("per-phase mean, std", columns(base, ["mean", "std"]), StandardScaler),
        ("per-phase mean, std, q10, q50, q90", columns(base, ["mean", "std", "q10", "q50", "q90"]), StandardScaler),
        ("per-phase quantiles q10..q90", columns(base, ["q10", "q25", "q50", "q75", "q90"]), StandardScaler),
        ("**model: per-phase mean, std, min, max, q10..q90**", base, StandardScaler),
        ("model features + skewness, kurtosis", np.hstack([base, stats.skew(windows, 1), stats.kurtosis(windows, 1)]), StandardScaler),
        ("model features + spectral band power", np.hstack([base, band_power(windows)]), StandardScaler),
        ("energy (sum of squares) per phase", (windows**2).sum(axis=1), StandardScaler),
        ("log1p of the model features", np.log1p(base), StandardScaler),
    ]  # fmt: skip
    rows = []
    for name, features, scaler in candidates:
        scaled = scaler().fit_transform(features)
        rows.append(row(name, frame, scaled, kmeans(scaled)))
    return rows


def scaler_table(frame, windows) -> list[dict]:
    base = si.batch_window_features(windows)
    rows = []
    for name, scaler in [
        ("StandardScaler", StandardScaler()),
        ("RobustScaler", RobustScaler()),
        ("MinMaxScaler", MinMaxScaler()),
        ("no scaling", None),
    ]:
        scaled = scaler.fit_transform(base) if scaler is not None else base
        rows.append(row(name, frame, scaled, kmeans(scaled)))
    return rows


def clusterer_table(frame, windows) -> list[dict]:
    scaled = StandardScaler().fit_transform(si.batch_window_features(windows))
    clusterers = [
        ("KMeans, n_init=10", kmeans),
        ("GaussianMixture, full covariance", lambda x: GaussianMixture(3, n_init=5, random_state=0).fit_predict(x)),
        ("GaussianMixture, diagonal covariance", lambda x: GaussianMixture(3, covariance_type="diag", n_init=5, random_state=0).fit_predict(x)),
        ("Agglomerative, Ward linkage", lambda x: AgglomerativeClustering(3).fit_predict(x)),
        ("Agglomerative, average linkage", lambda x: AgglomerativeClustering(3, linkage="average").fit_predict(x)),
    ]  # fmt: skip
    return [row(name, frame, scaled, cluster(scaled)) for name, cluster in clusterers]


def seed_table(frame, windows) -> list[dict]:
    scaled = StandardScaler().fit_transform(si.batch_window_features(windows))
    results = []
    for seed in range(10):
        states = KMeans(3, n_init=10, random_state=seed).fit_predict(scaled)
        results.append(row(f"seed {seed}", frame, scaled, states))
    summary = {"configuration": "model, KMeans seeds 0 to 9 (min to max)"}
    for key in results[0]:
        if key != "configuration":
            low = min(result[key] for result in results)
            high = max(result[key] for result in results)
            summary[key] = f"{low:.3f} to {high:.3f}"
    return [summary]


def window_size_table(frame) -> list[dict]:
    values = frame[SIGNALS].to_numpy()
    rows = []
    for window in (150, 200, 300, 450, 600):
        windows = si.sliding_windows(values, window, window)
        scaled = StandardScaler().fit_transform(si.batch_window_features(windows))
        rows.append(
            row(f"window_size = step = {window}", frame, scaled, kmeans(scaled), window)
        )
    return rows


def lag_table(frame, windows) -> list[dict]:
    """Row-level ARI of the model's states against labels shifted by ``shift`` rows."""
    scaled = StandardScaler().fit_transform(si.batch_window_features(windows))
    row_states = np.repeat(kmeans(scaled), WINDOW)
    rows = []
    for shift in range(-300, 901, 150):
        shifted = frame["class"].shift(-shift).to_numpy()[: len(row_states)]
        keep = ~np.isnan(shifted) & (shifted >= 0)
        rows.append(
            {
                "label shift (rows)": shift,
                "row-level ARI": adjusted_rand_score(shifted[keep], row_states[keep]),
            }
        )
    return rows


def held_out_table(frame, windows) -> list[dict]:
    """Fit scaler and KMeans on some windows and score the states of the others."""
    features = si.batch_window_features(windows)
    everything = np.arange(len(windows))
    splits = [
        ("first half -> second half", everything < 70),
        ("second half -> first half", everything >= 70),
        ("even windows -> odd windows", everything % 2 == 0),
    ]
    rows = []
    for name, train in splits:
        scaler = StandardScaler().fit(features[train])
        model = KMeans(3, n_init=10, random_state=0).fit(
            scaler.transform(features[train])
        )
        states = np.full(len(windows), -1)
        states[~train] = model.predict(scaler.transform(features[~train]))
        for lag_name, lag_rows in (("plain", 0), ("lag-corrected", LABEL_LAG_ROWS)):
            labels = frame["class"].shift(-lag_rows) if lag_rows else frame["class"]
            window_label = evaluator.window_labels(labels, len(windows), WINDOW, WINDOW)
            keep = ~train & np.array([label is not None for label in window_label])
            kept = np.array(list(window_label[keep]))
            rows.append(
                {
                    "fit -> scored windows": name,
                    "labels": lag_name,
                    "scored windows": int(keep.sum()),
                    "ARI": adjusted_rand_score(kept, states[keep]),
                    "accuracy": evaluator.matched_accuracy(kept, states[keep])[0],
                }
            )
    return rows


def ceiling_table(frame, windows) -> list[dict]:
    """Score the labels of the next window as if they were a model's states."""
    next_labels = evaluator.window_labels(
        frame["class"], len(windows), WINDOW, WINDOW, 1
    )
    states = np.array([-1 if label is None else label for label in next_labels])
    plain = score(frame, states, WINDOW, 0)
    return [
        {
            "states": "label of the next window (a perfect lag-corrected model)",
            "ARI plain": plain["ari"],
            "accuracy plain": plain["accuracy"],
        }
    ]


def markdown(rows: list[dict]) -> str:
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for item in rows:
        cells = [
            f"{value:.3f}" if isinstance(value, float) else str(value)
            for value in item.values()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    path = (
        Path(argv[0])
        if argv
        else settings.datasets_dir()
        / "state-identifier"
        / "si-sample-with-labels.parquet"
    )
    frame = pd.read_parquet(path)
    windows = si.sliding_windows(frame[SIGNALS].to_numpy(), WINDOW, WINDOW)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    sections = [
        ("Features (scaling as named, KMeans)", feature_table(frame, windows)),
        ("Scalers (model features, KMeans)", scaler_table(frame, windows)),
        ("Clusterers (model features, StandardScaler)", clusterer_table(frame, windows)),
        ("Seed stability", seed_table(frame, windows)),
        ("Window sizes (model features; lag-corrected = labels 300 rows later)", window_size_table(frame)),
        ("Label lag", lag_table(frame, windows)),
        ("Held-out windows (model configuration)", held_out_table(frame, windows)),
        ("Ceiling of the plain score", ceiling_table(frame, windows)),
    ]  # fmt: skip
    for title, rows in sections:
        print(f"### {title}\n\n{markdown(rows)}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
