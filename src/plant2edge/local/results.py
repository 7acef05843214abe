"""Results of a local pipeline run, as the Python API returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from plant2edge.local.errors import StepFailedError

COMPLETED, FAILED, SKIPPED, CANCELED = "Completed", "Failed", "Skipped", "Canceled"


@dataclass
class StepResult:
    name: str
    status: str  # Completed, Failed, Skipped or Canceled
    duration_s: float | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    exit_code: int | None = None
    mlflow_run_id: str | None = None
    log_dir: Path | None = None
    error: str | None = None


@dataclass
class PipelineRunResult:
    status: str  # Completed, Failed or Canceled
    run_dir: Path
    steps: dict[str, StepResult]
    outputs: dict[str, Path] = field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None
    mlflow_run_id: str | None = None
    experiment_id: str | None = None
    # Pipeline output name, or "<step>.<output>" for a step output with a name,
    # -> "<asset or model name>:<version>" registered after the run.
    registered: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status == COMPLETED

    def raise_for_status(self) -> None:
        """Raise StepFailedError with the failure report unless the run completed."""
        if not self.succeeded:
            raise StepFailedError(self.error or f"Pipeline run {self.status}.")
