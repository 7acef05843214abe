"""Run an Azure ML pipeline job YAML on this machine, as Azure ML runs it.

Each step runs its component's own ``command`` with ``bash -c`` in the
component's code folder, with the venv's ``python`` first on PATH. Steps run
one at a time in dependency order. Inputs written ``azureml:<name>:<version>``
resolve against the local data asset store or the MLflow model registry,
``https://`` files are downloaded, and local paths are relative to the YAML.
The pipeline gets an MLflow parent run and each step a child run.

Every run gets a folder ``<runs dir>/<pipeline>-<UTC time>-<id>/`` holding
``run.json`` and, per step, ``logs/``, ``outputs/`` and ``command.sh``.

Python API: ``run_pipeline(path, overrides)`` returns a PipelineRunResult.
It raises PipelineSpecError for an invalid YAML, binding or override, before
anything runs. It raises InputResolutionError when a data asset, model, URL or
local path is not found, before any step runs. When a step fails it returns a
result with ``status == "Failed"``, and ``result.raise_for_status()`` turns
that into StepFailedError.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plant2edge import settings
from plant2edge.local.errors import (
    InputResolutionError,
    PipelineError,
    PipelineSpecError,
    StepFailedError,
)
from plant2edge.local.overrides import parse_assignments
from plant2edge.local.results import PipelineRunResult, StepResult
from plant2edge.local.spec import PipelineSpec, load_pipeline

__all__ = [
    "InputResolutionError",
    "PipelineError",
    "PipelineRunResult",
    "PipelineSpecError",
    "StepFailedError",
    "StepResult",
    "main",
    "run_pipeline",
]

logger = logging.getLogger(__name__)

# Signals that cancel the run like Ctrl-C. SIGHUP comes when the terminal or
# SSH session closes; without a handler the step would keep running alone.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def run_pipeline(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    run_dir: str | Path | None = None,
    stream_logs: bool = True,
) -> PipelineRunResult:
    """Run the pipeline YAML at ``path`` and return its result.

    ``overrides`` maps ``inputs.<name>`` or ``jobs.<step>.inputs.<name>`` to a
    value, like ``az ml job create --set``. ``run_dir`` replaces the default
    run folder and must be empty or absent. With ``stream_logs`` the steps'
    stdout and stderr are echoed to this process's stdout and stderr.
    """
    from plant2edge.local.session import PipelineRun

    spec = load_pipeline(path, overrides)
    folder = create_run_dir(spec, run_dir)
    return PipelineRun(spec, folder, stream_logs).execute()


def create_run_dir(spec: PipelineSpec, run_dir: str | Path | None) -> Path:
    if run_dir is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = settings.runs_dir() / f"{spec.stem}-{stamp}-{uuid.uuid4().hex[:6]}"
    else:
        folder = Path(run_dir).resolve()
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise PipelineSpecError(
                f"Run folder {folder} already exists and is not empty. Give a new "
                "folder with --run-dir, or leave it out for a fresh one."
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PipelineError(
            f"Cannot create the run folder under {folder.parent}: {exc.strerror}. "
            f"Set {settings.HOME_ENV} to a writable folder, or give one with "
            "--run-dir."
        ) from exc
    return folder


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    package_logger = logging.getLogger("plant2edge")
    previous_level = package_logger.level
    handler = _attach_console_logging(package_logger)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        previous_handlers = {
            number: signal.signal(number, _interrupt) for number in STOP_SIGNALS
        }
    try:
        overrides = parse_assignments(args.overrides)
        result = run_pipeline(
            args.pipeline, overrides, run_dir=args.run_dir, stream_logs=not args.quiet
        )
    except PipelineSpecError as exc:
        print(f"plant2edge run: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        print(f"plant2edge run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "plant2edge run: interrupted; the run was canceled and its running "
            "step, if any, stopped.",
            file=sys.stderr,
        )
        return 130
    finally:
        if in_main_thread:
            for number, previous in previous_handlers.items():
                signal.signal(number, previous)
        package_logger.removeHandler(handler)
        package_logger.setLevel(previous_level)
    _print_summary(result)
    return 0 if result.succeeded else 1


def _interrupt(signum, frame) -> None:
    # Steps run in their own process group, so they do not see the runner's
    # signals. Stopping through KeyboardInterrupt stops the step and records it.
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plant2edge run",
        description="Run an Azure ML pipeline job YAML on this machine.",
        epilog="Example: plant2edge run pipelines/training.yaml "
        "--set inputs.n_states=3",
    )
    parser.add_argument("pipeline", type=Path, help="pipeline job YAML file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value as 'az ml job create --set' does: inputs.<name>=V, "
        "inputs.<name>.path=V or jobs.<step>.inputs.<name>=V (repeatable). "
        "Relative local paths are relative to the pipeline file, as in az ml",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="folder for this run, empty or absent (default: a new folder under "
        "$PLANT2EDGE_HOME/runs)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="do not echo step output to the console; the step logs still get it",
    )
    return parser


def _attach_console_logging(package_logger: logging.Logger) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    )
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    return handler


def _print_summary(result: PipelineRunResult) -> None:
    print(f"Run {result.status}: {result.run_dir}")
    for name, path in result.outputs.items():
        print(f"  output {name}: {path}")
    for where, asset in result.registered.items():
        print(f"  registered {where} as {asset}")


if __name__ == "__main__":
    sys.exit(main())
