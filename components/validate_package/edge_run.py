"""Run an edge package in the AI SDK's LocalPipelineRunner, inside a throwaway folder.

The runner builds a virtual environment from the package's own wheels, starts
a new interpreter for every ``run_pipeline`` call and writes side files
(``<package>_tested.zip``, ``.sha256``, execution reports) next to the zip it
is given. It therefore runs on a copy of the package inside a temporary folder,
with TMPDIR and HOME pointing into that folder too, and the whole folder is
removed afterwards.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)


RUNNER_LOGGER = "simaticai.testing.pipeline_runner"
OUTPUT_TAIL_LINES = 40


class EdgeRunError(RuntimeError):
    """The edge package could not be installed or its component failed."""


class _RunnerOutput(logging.Handler):
    """Keep the last lines the runner logs, which include the component's output."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def captured_runner_output():
    """Collect the runner's INFO lines instead of printing them; yield the handler."""
    runner_logger = logging.getLogger(RUNNER_LOGGER)
    saved = runner_logger.level, runner_logger.propagate
    handler = _RunnerOutput()
    runner_logger.addHandler(handler)
    runner_logger.setLevel(logging.INFO)
    runner_logger.propagate = False
    try:
        yield handler
    finally:
        runner_logger.removeHandler(handler)
        runner_logger.setLevel(saved[0])
        runner_logger.propagate = saved[1]


@contextlib.contextmanager
def isolated_environment(work: Path, wheel_dir: Path | None):
    """Point TMPDIR, HOME and pip at ``work`` (and ``wheel_dir``) while inside."""
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    (work / "home").mkdir(parents=True, exist_ok=True)
    changes = {
        "TMPDIR": str(work / "tmp"),
        "HOME": str(work / "home"),
        # pip 26.3 maps this variable onto its store_false option, so "0" turns
        # byte-compiling off. That cut the runner's install of numpy, scipy,
        # pandas and scikit-learn from about 40 s to about 8 s on 2 cores.
        "PIP_NO_COMPILE": "0",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    if not os.environ.get("SIMATICAI_TELEMETRY"):
        changes["SIMATICAI_TELEMETRY"] = "false"
    if wheel_dir is not None:
        changes.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheel_dir))
    saved_env = {key: os.environ.get(key) for key in changes}
    saved_tempdir = tempfile.tempdir
    os.environ.update(changes)
    tempfile.tempdir = str(work / "tmp")
    try:
        yield
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_edge_package(
    edge_zip: Path,
    payload: list,
    work_parent: Path,
    wheel_dir: Path | None,
    keep_report: Path | None = None,
) -> tuple[list, float]:
    """Run ``payload`` (one list, one interpreter) through the package; return outputs.

    Returns the runner's outputs (``None`` outputs dropped) and the seconds the
    run took, including building the virtual environment. ``keep_report``
    receives a copy of the runner's execution report.
    """
    from simaticai.testing.pipeline_runner import LocalPipelineRunner

    work = Path(tempfile.mkdtemp(prefix=".edge-run-", dir=work_parent))
    started = time.perf_counter()
    try:
        with isolated_environment(work, wheel_dir):
            package_copy = work / edge_zip.name
            shutil.copy(edge_zip, package_copy)
            try:
                with (
                    captured_runner_output() as output,
                    LocalPipelineRunner(package_copy, path=work / "run") as runner,
                ):
                    outputs = runner.run_pipeline(payload)
            except (RuntimeError, AssertionError) as exc:
                raise EdgeRunError(_failure_message(exc, output, wheel_dir)) from exc
            reports = sorted(work.glob("*_execution_report*.md"))
            if keep_report is not None and reports:
                shutil.copy(reports[-1], keep_report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return outputs or [], time.perf_counter() - started


def _failure_message(exc: Exception, output: _RunnerOutput, wheel_dir) -> str:
    # The runner's message points into its working folder, which is deleted.
    summary = str(exc).split("You can check the test results")[0].strip()
    hint = ""
    if wheel_dir is not None:
        hint = (
            f" pip read wheels only from {wheel_dir}; if a wheel is missing there, "
            "run scripts/fetch-wheels.py."
        )
    tail = "\n".join(output.lines)
    return (
        f"The edge package failed to run: {summary}{hint}\n"
        f"Last {len(output.lines)} lines of the runner and the component:\n{tail}"
    )
