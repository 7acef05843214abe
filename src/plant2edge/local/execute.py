"""Run one step's rendered command and stage its outputs.

The command runs with ``bash -c`` as in an Azure ML container, with the
venv's ``bin`` first on PATH. Its stdout and stderr are written to log files
and echoed to the console. Outputs are created in a staging folder that is
renamed to ``outputs/`` only when the step succeeds, and to ``failed-outputs/``
when it fails.
"""

from __future__ import annotations

import codecs
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import BinaryIO, TextIO

FILE_TYPES = frozenset({"uri_file"})
STAGING = ".staging"
OUTPUTS = "outputs"
FAILED_OUTPUTS = "failed-outputs"
_KILL_TIMEOUT_S = 10


class OutputMissingError(RuntimeError):
    """A step finished with exit code 0 but did not write a uri_file output."""


def venv_bin() -> Path:
    """Return the ``bin`` folder of the running interpreter's venv."""
    candidate = Path(sys.prefix) / "bin"
    if (candidate / "python").exists():
        return candidate
    return Path(sys.executable).parent


def step_environment(variables: dict[str, str], node_variables: dict[str, str]):
    """Return a step's environment: this process's, then the node's, then ``variables``.

    Later sources win, so a node cannot replace the MLflow and PLANT2EDGE variables.
    """
    env = dict(os.environ)
    env.update(node_variables)
    bin_dir = venv_bin()
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    # mlflow.start_run() raises when MLFLOW_EXPERIMENT_NAME names an experiment
    # other than MLFLOW_EXPERIMENT_ID (checked with MLflow 3.15).
    env.pop("MLFLOW_EXPERIMENT_NAME", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(variables)
    return env


def run_command(command: str, cwd: Path, env: dict, log_dir: Path, echo: bool) -> int:
    """Run ``command`` and return its exit code; logs go to ``log_dir``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / "stdout.txt", "wb") as stdout_log,
        open(log_dir / "stderr.txt", "wb") as stderr_log,
    ):
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        threads = [
            _start_tee(process.stdout, stdout_log, sys.stdout if echo else None),
            _start_tee(process.stderr, stderr_log, sys.stderr if echo else None),
        ]
        try:
            exit_code = process.wait()
        except KeyboardInterrupt:
            _stop(process)
            raise
        finally:
            _end_leftovers(process.pid, threads)
    return exit_code


def _start_tee(source: BinaryIO, log: BinaryIO, console: TextIO | None):
    thread = threading.Thread(target=_tee, args=(source, log, console), daemon=True)
    thread.start()
    return thread


def _tee(source: BinaryIO, log: BinaryIO, console: TextIO | None) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while chunk := source.read1(65536):
        log.write(chunk)
        log.flush()
        if console is None:
            continue
        try:
            console.write(decoder.decode(chunk))
            console.flush()
        except (OSError, ValueError):
            # The console went away; the log file still gets everything.
            console = None
    source.close()


def _end_leftovers(group: int, threads: list[threading.Thread]) -> None:
    """Stop processes the step left running, as the end of an Azure ML job does.

    Background processes of the step keep its output pipes open, so the log
    threads would otherwise wait for them.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass
        for thread in threads:
            thread.join(timeout=_KILL_TIMEOUT_S)
        if not any(thread.is_alive() for thread in threads):
            return


def _stop(process: subprocess.Popen) -> None:
    """Stop the step's process group, which only the step's own processes are in."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=_KILL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 20) -> list[str]:
    """Return the last ``lines`` lines of a log file."""
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]


def stage_outputs(step_dir: Path, outputs: dict[str, str]) -> dict[str, Path]:
    """Create an empty place for each output in the staging folder.

    A ``uri_folder`` (or model) output is an empty folder; a ``uri_file`` output
    is a file path, named after the output, inside an empty folder.
    """
    staging = step_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    paths = {}
    for name, output_type in outputs.items():
        folder = staging / name
        folder.mkdir(parents=True)
        paths[name] = folder / name if output_type in FILE_TYPES else folder
    return paths


def publish_outputs(step_dir: Path, outputs: dict[str, str]) -> dict[str, Path]:
    """Move staged outputs to ``<step_dir>/outputs`` and return their final paths.

    Raises OutputMissingError, and leaves nothing in ``outputs/``, when a
    ``uri_file`` output was not written.
    """
    staging = step_dir / STAGING
    for name, output_type in outputs.items():
        if output_type in FILE_TYPES and not (staging / name / name).is_file():
            raise OutputMissingError(
                f"The step exited with code 0 but did not write its uri_file output "
                f"{name!r} to the path it was given ({staging / name / name})."
            )
    final = step_dir / OUTPUTS
    staging.mkdir(exist_ok=True)
    os.replace(staging, final)
    return {
        name: final / name / name if output_type in FILE_TYPES else final / name
        for name, output_type in outputs.items()
    }


def discard_outputs(step_dir: Path) -> Path | None:
    """Move what a failed step wrote to ``failed-outputs/`` and return that folder.

    Later steps never read it, but a failed step's own report (a validation
    report, say) stays there for inspection. Returns None when it wrote nothing.
    """
    staging = step_dir / STAGING
    failed_dir = step_dir / FAILED_OUTPUTS
    shutil.rmtree(failed_dir, ignore_errors=True)
    if not staging.is_dir() or not any(path.is_file() for path in staging.rglob("*")):
        shutil.rmtree(staging, ignore_errors=True)
        return None
    os.replace(staging, failed_dir)
    return failed_dir
