"""Register the state identifier in the MLflow model registry when it is good enough.

A model is registered only when its metrics pass the thresholds and its primary
metric is not worse than that of the latest registered version of the same
name. The primary metric is ``adjusted_rand_lag_corrected`` when both the
candidate and the latest version have it, and ``silhouette`` otherwise (or the
one the caller names). Not registering is a normal outcome, written to
registration.json with the reason; the step fails on it only when asked to.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
from mlflow.models import Model
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REGISTRATION_FILE = "registration.json"
MODEL_ARTIFACT_PATH = "model"
AUTO = "auto"
LABEL_METRIC = "adjusted_rand_lag_corrected"
CLUSTER_METRIC = "silhouette"
# Direction of each metric that can be the primary one: True when higher is better.
HIGHER_IS_BETTER = {
    "adjusted_rand_lag_corrected": True,
    "adjusted_rand_plain": True,
    "accuracy_lag_corrected": True,
    "accuracy_plain": True,
    "silhouette": True,
    "davies_bouldin": False,
}
UNKNOWN = "unknown"


class RegistrationError(Exception):
    """An input that registration cannot use; the message names the value and the fix."""


@dataclass
class Thresholds:
    min_silhouette: float
    max_davies_bouldin: float
    min_adjusted_rand: float | None = None


@dataclass
class Decision:
    register: bool
    reason: str
    failed_checks: list[str] = field(default_factory=list)
    comparison: dict | None = None


def read_metrics(path: Path) -> dict:
    """Read the ``metrics`` section of metrics.json from a folder or a file path."""
    metrics_file = path / METRICS_FILE if path.is_dir() else path
    if not metrics_file.is_file():
        raise RegistrationError(
            f"{METRICS_FILE} not found at {path}. Pass the metrics output of the "
            "evaluate_model step."
        )
    try:
        report = json.loads(metrics_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegistrationError(
            f"{metrics_file} is not valid JSON ({exc}). Run evaluate_model again."
        ) from exc
    metrics = report.get("metrics")
    if not isinstance(metrics, dict):
        raise RegistrationError(
            f"{metrics_file} has no 'metrics' object. Pass the metrics output of the "
            "evaluate_model step."
        )
    return {
        name: value
        for name, value in metrics.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def read_model_metadata(model_dir: Path) -> dict:
    if not (model_dir / "MLmodel").is_file():
        raise RegistrationError(
            f"No MLmodel file in {model_dir}. Pass the model output of the "
            "train_state_identifier step."
        )
    return Model.load(str(model_dir)).metadata or {}


def check_thresholds(metrics: dict, thresholds: Thresholds) -> list[str]:
    """Return one sentence per threshold the metrics miss; empty when all pass."""
    failed = []
    silhouette = metrics.get("silhouette")
    if silhouette is None:
        failed.append("silhouette is missing from the metrics")
    elif silhouette < thresholds.min_silhouette:
        failed.append(
            f"silhouette {silhouette:.4f} < min_silhouette {thresholds.min_silhouette}"
        )
    davies_bouldin = metrics.get("davies_bouldin")
    if davies_bouldin is None:
        failed.append("davies_bouldin is missing from the metrics")
    elif davies_bouldin > thresholds.max_davies_bouldin:
        failed.append(
            f"davies_bouldin {davies_bouldin:.4f} > max_davies_bouldin "
            f"{thresholds.max_davies_bouldin}"
        )
    # min_adjusted_rand applies only to data with labels, where the metric exists.
    adjusted_rand = metrics.get(LABEL_METRIC)
    minimum = thresholds.min_adjusted_rand
    if minimum is not None and adjusted_rand is not None and adjusted_rand < minimum:
        failed.append(
            f"{LABEL_METRIC} {adjusted_rand:.4f} < min_adjusted_rand {minimum}"
        )
    return failed


def latest_version(client: MlflowClient, name: str):
    """Return the registered version of ``name`` with the highest number, or None."""
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        return None
    return max(versions, key=lambda version: int(version.version))


def choose_primary_metric(
    requested: str, candidate: dict, latest_tags: dict | None
) -> str:
    """Return the metric to compare; ``latest_tags`` is None when nothing is registered."""
    if requested != AUTO:
        return requested
    if LABEL_METRIC in candidate and (
        latest_tags is None or LABEL_METRIC in latest_tags
    ):
        return LABEL_METRIC
    return CLUSTER_METRIC


def compare_with_latest(metrics: dict, latest, requested_metric: str) -> dict | None:
    """Compare the candidate's primary metric with the latest version's tag.

    Returns None when no version is registered yet.
    """
    if latest is None:
        return None
    tags = dict(latest.tags or {})
    metric = choose_primary_metric(requested_metric, metrics, tags)
    higher_is_better = HIGHER_IS_BETTER[metric]
    comparison = {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "candidate": metrics.get(metric),
        "latest_version": str(latest.version),
        "latest": None,
        "not_worse": True,
    }
    try:
        comparison["latest"] = float(tags[metric])
    except (KeyError, ValueError):
        comparison["note"] = f"version {latest.version} has no numeric {metric} tag"
        return comparison
    if comparison["candidate"] is None:
        comparison["not_worse"] = False
        comparison["note"] = f"the candidate has no {metric} metric"
        return comparison
    if higher_is_better:
        comparison["not_worse"] = comparison["candidate"] >= comparison["latest"]
    else:
        comparison["not_worse"] = comparison["candidate"] <= comparison["latest"]
    return comparison


def same_as_latest(metrics: dict, data_asset: str | None, latest) -> bool:
    """Tell whether ``latest`` was trained on ``data_asset`` and has equal metrics."""
    if latest is None or not data_asset or UNKNOWN in data_asset:
        return False
    tags = dict(latest.tags or {})
    if tags.get("data_asset") != data_asset:
        return False
    for metric, value in metrics.items():
        try:
            if not math.isclose(float(tags[metric]), float(value), abs_tol=1e-12):
                return False
        except (KeyError, TypeError, ValueError):
            return False
    return True


def decide(
    metrics: dict,
    thresholds: Thresholds,
    latest,
    requested_metric: str,
    data_asset: str | None = None,
) -> Decision:
    """Decide whether to register: thresholds first, then the latest version.

    A model trained on the same data asset version as the latest version, with
    the same metrics, is the same model again, so it is not registered.
    """
    failed = check_thresholds(metrics, thresholds)
    if failed:
        return Decision(False, "thresholds not met: " + "; ".join(failed), failed)
    if same_as_latest(metrics, data_asset, latest):
        return Decision(
            False,
            f"same data asset ({data_asset}) and the same metrics as version "
            f"{latest.version}; nothing new to register",
        )
    comparison = compare_with_latest(metrics, latest, requested_metric)
    if comparison is None:
        return Decision(True, "passes the thresholds; first version of this name")
    if not comparison["not_worse"]:
        return Decision(
            False,
            f"worse than version {comparison['latest_version']}: "
            f"{comparison['metric']} {comparison['candidate']} vs "
            f"{comparison['latest']}"
            + (f" ({comparison['note']})" if "note" in comparison else ""),
            comparison=comparison,
        )
    if comparison["latest"] is None:
        reason = (
            f"passes the thresholds; {comparison['note']}, so there is nothing to "
            "compare with"
        )
    else:
        reason = (
            f"passes the thresholds and is not worse than version "
            f"{comparison['latest_version']}: {comparison['metric']} "
            f"{comparison['candidate']:.4f} vs {comparison['latest']:.4f}"
        )
    return Decision(True, reason, comparison=comparison)


def version_tags(metrics: dict, metadata: dict, primary_metric: str | None) -> dict:
    name = str(metadata.get("data_asset_name") or UNKNOWN)
    version = str(metadata.get("data_asset_version") or UNKNOWN)
    tags = {
        "data_asset_name": name,
        "data_asset_version": version,
        "data_asset": f"{name}:{version}",
    }
    tags.update({metric: str(value) for metric, value in metrics.items()})
    if primary_metric:
        tags["primary_metric"] = primary_metric
    return tags


def register(model_dir: Path, name: str, tags: dict, run_id: str) -> str:
    """Log the model folder as an artifact of the active run and register it.

    Returns the registered version. ``runs:/<run>/model`` works with a local
    MLflow store and with Azure ML's MLflow alike.
    """
    mlflow.log_artifacts(str(model_dir), artifact_path=MODEL_ARTIFACT_PATH)
    model_uri = f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}"
    version = mlflow.register_model(model_uri, name, tags=tags)
    return str(version.version)


def log_decision(registration: dict) -> None:
    """Record the decision on the active run."""
    mlflow.set_tags(
        {
            "registered": str(registration["registered"]).lower(),
            "registration_reason": registration["reason"][:5000],
        }
    )
    mlflow.log_dict(registration, REGISTRATION_FILE)


@contextlib.contextmanager
def staged_output(output: Path) -> Iterator[Path]:
    """Yield an empty staging folder and move its content into ``output`` on success.

    The staging folder sits beside ``output`` when its parent is writable, so
    the final step is one rename. Otherwise it sits inside ``output`` and its
    entries are renamed one by one. A failure leaves ``output`` as it was.
    """
    output.mkdir(parents=True, exist_ok=True)
    if any(output.iterdir()):
        raise RegistrationError(
            f"Output folder {output} is not empty. Pass an empty or new folder."
        )
    try:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent)
        )
    except OSError:
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=output))
    # mkdtemp creates the folder as 0700; outputs are readable by all.
    staging.chmod(0o755)
    try:
        yield staging
        try:
            os.replace(staging, output)
        except OSError:
            for child in staging.iterdir():
                os.replace(child, output / child.name)
            staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_registration(registration: dict, output: Path) -> None:
    with staged_output(output) as staging:
        (staging / REGISTRATION_FILE).write_text(
            json.dumps(registration, indent=2) + "\n", encoding="utf-8"
        )


def run_registration(args: argparse.Namespace, run_id: str) -> dict:
    """Decide, register when the decision allows it, and return registration.json.

    Runs inside the step's active MLflow run, whose ID is ``run_id``.
    """
    if not args.model_name.strip() or "'" in args.model_name:
        raise RegistrationError(
            f"model_name {args.model_name!r} is empty or contains a single quote; "
            "pass a name such as 'state-identifier'."
        )
    metrics = read_metrics(args.metrics)
    metadata = read_model_metadata(args.model)
    thresholds = Thresholds(
        args.min_silhouette, args.max_davies_bouldin, args.min_adjusted_rand
    )
    client = MlflowClient()
    latest = latest_version(client, args.model_name)
    data_asset = version_tags(metrics, metadata, None)["data_asset"]
    decision = decide(metrics, thresholds, latest, args.primary_metric, data_asset)
    primary = (
        decision.comparison["metric"]
        if decision.comparison
        else choose_primary_metric(args.primary_metric, metrics, None)
    )
    registration = {
        "registered": False,
        "name": args.model_name,
        "version": None,
        "reason": decision.reason,
        "metrics": metrics,
        "primary_metric": primary,
        "thresholds": vars(thresholds),
        "failed_checks": decision.failed_checks,
        "comparison": decision.comparison,
        "data_asset_name": metadata.get("data_asset_name"),
        "data_asset_version": metadata.get("data_asset_version"),
        "run_id": run_id,
    }
    if decision.register:
        tags = version_tags(metrics, metadata, primary)
        version = register(args.model, args.model_name, tags, run_id)
        registration.update(registered=True, version=version)
    return registration


def optional_float(text: str) -> float | None:
    return None if text.strip().lower() in ("", "none") else float(text)


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="MLflow model folder from train_state_identifier",
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        required=True,
        help="folder with metrics.json from evaluate_model",
    )
    parser.add_argument(
        "--model-name",
        default="state-identifier",
        help="registered model name (default state-identifier)",
    )
    parser.add_argument(
        "--min-silhouette",
        type=float,
        default=0.5,
        help="lowest silhouette that may be registered",
    )
    parser.add_argument(
        "--max-davies-bouldin",
        type=float,
        default=1.0,
        help="highest Davies-Bouldin index that may be registered",
    )
    parser.add_argument(
        "--min-adjusted-rand",
        type=optional_float,
        default=None,
        help=f"lowest {LABEL_METRIC}, checked only when the metrics have it",
    )
    parser.add_argument(
        "--primary-metric",
        default=AUTO,
        choices=[AUTO, *HIGHER_IS_BETTER],
        help="metric compared with the latest registered version",
    )
    parser.add_argument(
        "--fail-if-not-registered",
        type=parse_bool,
        default=False,
        help="exit with an error when the model is not registered",
    )
    parser.add_argument(
        "--registration",
        type=Path,
        required=True,
        help="empty output folder for registration.json",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
        with mlflow.start_run() as run:
            logger.info("Step 1 of 2: deciding whether to register %s", args.model_name)
            registration = run_registration(args, run.info.run_id)
            logger.info(
                "Step 2 of 2: writing %s to %s", REGISTRATION_FILE, args.registration
            )
            write_registration(registration, args.registration)
            log_decision(registration)
    except RegistrationError as exc:
        logger.error("%s", exc)
        return 2
    if registration["registered"]:
        logger.info(
            "Registered %s version %s: %s",
            registration["name"],
            registration["version"],
            registration["reason"],
        )
        return 0
    if args.fail_if_not_registered:
        logger.error(
            "Not registered (fail_if_not_registered is True): %s",
            registration["reason"],
        )
        return 1
    logger.info("Not registered: %s", registration["reason"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
