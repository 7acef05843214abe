"""One run of a checked pipeline: inputs, MLflow runs, steps, registration, run.json."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

from plant2edge import settings
from plant2edge.assets import DataAssetError, LocalDataStore
from plant2edge.local import execute
from plant2edge.local.command import render
from plant2edge.local.errors import InputResolutionError, PipelineError
from plant2edge.local.inputs import InputResolver
from plant2edge.local.record import Redactor, redact_url, write_json_atomic
from plant2edge.local.results import (
    CANCELED,
    COMPLETED,
    FAILED,
    SKIPPED,
    PipelineRunResult,
    StepResult,
)
from plant2edge.local.spec import AssetRequest, PipelineSpec, StepSpec, input_values
from plant2edge.local.tracking import Tracking
from plant2edge.local.values import MODEL_TYPES, PathValue, StepOutput, check_literal

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES = 20
_MLFLOW_STATUS = {COMPLETED: "FINISHED", FAILED: "FAILED", CANCELED: "KILLED"}


class PipelineRun:
    def __init__(self, spec: PipelineSpec, run_dir: Path, stream_logs: bool) -> None:
        self.spec = spec
        self.run_dir = run_dir
        self.stream_logs = stream_logs
        self.store = LocalDataStore()
        self.result = PipelineRunResult(
            status="Preparing",
            run_dir=run_dir,
            steps={name: StepResult(name, "NotStarted") for name in spec.steps},
        )
        self.started_at = datetime.now(UTC)
        self.step_inputs: dict[str, dict[str, Any]] = {}
        self.input_sources: dict[str, dict] = {}
        self._tracking: Tracking | None = None
        self.redact = _redactor(spec)

    @property
    def tracking(self) -> Tracking:
        if self._tracking is None:
            self._tracking = Tracking()
        return self._tracking

    def execute(self) -> PipelineRunResult:
        logger.info("Running %s in %s", self.spec.path.name, self.run_dir)
        self._save()
        try:
            self._resolve_inputs()
            self._check_registrations()
            self._start_pipeline_run()
        except PipelineError as exc:
            self._finish(FAILED, error=str(exc))
            raise
        except MlflowException as exc:
            # MLflow's messages repeat the tracking URI with any user info in it.
            error = InputResolutionError(redact_url(f"MLflow request failed: {exc}"))
            self._finish(FAILED, error=str(error))
            raise error from exc
        except KeyboardInterrupt:
            self._finish(CANCELED, error="Interrupted by the user.")
            raise
        try:
            self._run_steps()
            if self.result.failed_step is None:
                self._register_outputs()
        except KeyboardInterrupt:
            self._finish(CANCELED, error="Interrupted by the user.")
            raise
        self._finish(FAILED if self.result.error else COMPLETED, self.result.error)
        return self.result

    # Inputs -----------------------------------------------------------------

    def _resolve_inputs(self) -> None:
        resolver = InputResolver(
            self.spec.path.parent,
            self.run_dir / "inputs",
            self.store,
            lambda: self.tracking,
        )
        for step in self.spec.steps.values():
            self.step_inputs[step.name] = {
                name: self._resolve_value(step, name, value, resolver)
                for name, value in input_values(step, self.spec.inputs).items()
            }

    def _resolve_value(self, step: StepSpec, name: str, value, resolver):
        declared = step.component.inputs[name]
        if value is None or isinstance(value, StepOutput):
            return value
        if isinstance(value, PathValue):
            resolved = resolver.resolve(value, declared.type)
            self.input_sources[f"jobs.{step.name}.inputs.{name}"] = resolved.source
            return resolved.path
        return check_literal(f"Step {step.name!r} input {name!r}", declared, value)

    def _registrations(self) -> list[tuple[str, str, str, AssetRequest]]:
        """Return (key, step, step output, request) for every output to register."""
        found = [
            (name, out.step, out.step_output, out.asset)
            for name, out in self.spec.outputs.items()
            if out.asset is not None
        ]
        for step in self.spec.steps.values():
            for output, request in step.registrations.items():
                found.append((f"{step.name}.{output}", step.name, output, request))
        return found

    def _check_registrations(self) -> None:
        for key, _, _, request in self._registrations():
            if request.version is None:
                continue
            if request.type in MODEL_TYPES:
                raise InputResolutionError(
                    f"Output {key!r} sets version {request.version!r} for model "
                    f"{request.name!r}, but the MLflow registry numbers model "
                    "versions itself. Remove 'version'."
                )
            try:
                versions = self.store.list_versions(request.name)
            except DataAssetError as exc:
                raise InputResolutionError(f"Output {key!r}: {exc}") from exc
            if request.version in versions:
                raise InputResolutionError(
                    f"Output {key!r} would register data asset {request.name}:"
                    f"{request.version}, which already exists (versions: "
                    f"{', '.join(versions)}). Remove 'version' to take the next one, "
                    "or choose another."
                )

    # MLflow -----------------------------------------------------------------

    def _start_pipeline_run(self) -> None:
        self.result.experiment_id = self.tracking.ensure_experiment(
            self.spec.experiment_name
        )
        self.result.mlflow_run_id = self.tracking.start_run(
            self.result.experiment_id,
            self.spec.display_name or self.run_dir.name,
            tags={
                "plant2edge.pipeline": str(self.spec.path),
                "plant2edge.run_dir": str(self.run_dir),
            },
        )
        self.result.status = "Running"
        self._save()

    def _step_variables(self, run_id: str) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.tracking.tracking_uri,
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_ID": self.result.experiment_id,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            settings.HOME_ENV: str(settings.home()),
            settings.DATA_ASSETS_ENV: str(settings.data_assets_dir()),
        }

    # Steps ------------------------------------------------------------------

    def _run_steps(self) -> None:
        total = len(self.spec.steps)
        for index, step in enumerate(self.spec.steps.values(), start=1):
            if self.result.failed_step is not None:
                self.result.steps[step.name].status = SKIPPED
                logger.info("[step %d/%d] %s skipped", index, total, step.name)
                continue
            self._run_step(step, f"[step {index}/{total}]")
            self._save()

    def _run_step(self, step: StepSpec, label: str) -> None:
        result = self.result.steps[step.name]
        logger.info("%s %s started", label, step.name)
        command = self._prepare_step(step, result)

        result.mlflow_run_id = self.tracking.start_run(
            self.result.experiment_id,
            step.name,
            self.result.mlflow_run_id,
            tags={"plant2edge.step": step.name},
        )
        env = execute.step_environment(
            self._step_variables(result.mlflow_run_id), step.environment_variables
        )
        result.status = "Running"
        started = time.monotonic()
        try:
            result.exit_code = execute.run_command(
                command, step.component.code_dir, env, result.log_dir, self.stream_logs
            )
        except KeyboardInterrupt:
            self._end_step(step, result, CANCELED, time.monotonic() - started)
            raise
        self._complete_step(step, result, time.monotonic() - started, label)

    def _prepare_step(self, step: StepSpec, result: StepResult) -> str:
        """Create the step folder and staged outputs; return the rendered command."""
        step_dir = self.run_dir / step.name
        step_dir.mkdir(exist_ok=True)
        result.log_dir = step_dir / "logs"
        inputs = self._bind_upstream(step)
        self.step_inputs[step.name] = inputs
        outputs = execute.stage_outputs(step_dir, step.component.outputs)
        command = render(step.component.command, inputs, outputs)
        (step_dir / "command.sh").write_text(
            self._display_command(step, inputs, outputs)
        )
        return command

    def _complete_step(self, step, result: StepResult, duration: float, label) -> None:
        if result.exit_code == 0:
            try:
                result.outputs = execute.publish_outputs(
                    self.run_dir / step.name, step.component.outputs
                )
            except execute.OutputMissingError as exc:
                result.error = str(exc)
        else:
            result.error = f"exit code {result.exit_code}"
        status = COMPLETED if result.error is None else FAILED
        self._end_step(step, result, status, duration)
        if status == COMPLETED:
            logger.info("%s %s finished in %.1f s", label, step.name, duration)
            return
        self.result.failed_step = step.name
        self.result.error = self._failure_report(step, result, label)
        logger.error("%s", self.result.error)

    def _end_step(self, step, result: StepResult, status: str, duration: float) -> None:
        if status != COMPLETED:
            execute.discard_outputs(self.run_dir / step.name)
        result.status = status
        result.duration_s = round(duration, 3)
        self.tracking.end_run(result.mlflow_run_id, _MLFLOW_STATUS[status])

    def _bind_upstream(self, step: StepSpec) -> dict[str, Any]:
        values = dict(self.step_inputs[step.name])
        for name, value in values.items():
            if isinstance(value, StepOutput):
                values[name] = self.result.steps[value.step].outputs[value.name]
        return values

    def _display_command(self, step, inputs: dict, outputs: dict) -> str:
        redacted = {name: self.redact(name, value) for name, value in inputs.items()}
        text = render(step.component.command, redacted, outputs)
        return f"# cwd: {step.component.code_dir}\n{text}\n"

    def _failure_report(self, step: StepSpec, result: StepResult, label: str) -> str:
        stderr_path = result.log_dir / "stderr.txt"
        lines = [
            self.redact("stderr", line)
            for line in execute.tail(stderr_path, STDERR_TAIL_LINES)
        ]
        names = list(self.spec.steps)
        skipped = names[names.index(step.name) + 1 :]
        report = [
            (
                f"{label} {step.name} failed ({result.error}) after "
                f"{result.duration_s:.1f} s."
            ),
            f"Last {len(lines)} lines of its stderr:"
            if lines
            else "Its stderr is empty.",
            *(f"  | {line}" for line in lines),
            f"Full log: {stderr_path}",
            f"Inspect it with: less {stderr_path}",
            f"Command: {self.run_dir / step.name / 'command.sh'}",
        ]
        failed_dir = self.run_dir / step.name / execute.FAILED_OUTPUTS
        if failed_dir.is_dir():
            report.append(f"What it wrote before failing: {failed_dir}")
        if skipped:
            report.append(f"Skipped steps: {', '.join(skipped)}")
        return "\n".join(report)

    # Registration -------------------------------------------------------------

    def _register_outputs(self) -> None:
        for name, output in self.spec.outputs.items():
            step_outputs = self.result.steps[output.step].outputs
            self.result.outputs[name] = step_outputs[output.step_output]
        try:
            for key, step, output, request in self._registrations():
                path = self.result.steps[step].outputs[output]
                self.result.registered[key] = self._register(request, path, step)
        except (DataAssetError, PipelineError) as exc:
            self.result.error = f"Registering outputs failed: {exc}"
            logger.error("%s", self.result.error)

    def _register(self, request: AssetRequest, path: Path, step: str) -> str:
        if request.type in MODEL_TYPES:
            version = self.tracking.register_model(
                request.name, path, self.result.mlflow_run_id
            )
            logger.info("Registered model %s:%s", request.name, version)
        else:
            version = self.store.register(
                request.name,
                path,
                request.type,
                request.description,
                tags={
                    "pipeline": self.spec.stem,
                    "step": step,
                    "run_dir": str(self.run_dir),
                    "mlflow_run_id": self.result.mlflow_run_id or "",
                },
                version=request.version,
            )
        return f"{request.name}:{version}"

    # Record -----------------------------------------------------------------

    def _finish(self, status: str, error: str | None = None) -> None:
        self.result.status = status
        self.result.error = self.redact("error", error)
        for step in self.result.steps.values():
            if step.status in ("NotStarted", "Running"):
                step.status = SKIPPED if status != CANCELED else CANCELED
        if self.result.mlflow_run_id:
            self.tracking.end_run(self.result.mlflow_run_id, _MLFLOW_STATUS[status])
        self._save()
        seconds = (datetime.now(UTC) - self.started_at).total_seconds()
        logger.info(
            "Pipeline %s %s in %.1f s; run folder %s",
            self.spec.stem,
            status.lower(),
            seconds,
            self.run_dir,
        )

    def _save(self) -> None:
        write_json_atomic(self.run_dir / "run.json", self._record())

    def _record(self) -> dict:
        spec, result = self.spec, self.result
        return {
            "pipeline": str(spec.path),
            "experiment_name": spec.experiment_name,
            "status": result.status,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "failed_step": result.failed_step,
            "error": result.error,
            "overrides": {k: self.redact(k, v) for k, v in spec.overrides.items()},
            "inputs": {
                name: self.redact(name, v.path if isinstance(v, PathValue) else v)
                for name, v in spec.inputs.items()
            },
            "input_sources": self.input_sources,
            "outputs": {k: str(v) for k, v in result.outputs.items()},
            "registered": result.registered,
            "mlflow": {
                "tracking_uri": redact_url(self.tracking.tracking_uri)
                if self._tracking
                else None,
                "experiment_id": result.experiment_id,
                "run_id": result.mlflow_run_id,
            },
            "steps": {name: self._step_record(name) for name in spec.steps},
        }

    def _step_record(self, name: str) -> dict:
        step, result = self.spec.steps[name], self.result.steps[name]
        inputs = self.step_inputs.get(name, {})
        return {
            "status": result.status,
            "duration_s": result.duration_s,
            "exit_code": result.exit_code,
            "component": str(step.component.source),
            "code": str(step.component.code_dir),
            "mlflow_run_id": result.mlflow_run_id,
            "inputs": {
                key: getattr(value, "text", None) or self.redact(key, value)
                for key, value in inputs.items()
            },
            "outputs": {k: str(v) for k, v in result.outputs.items()},
            "error": result.error,
        }


def _redactor(spec: PipelineSpec) -> Redactor:
    redact = Redactor()
    for name, value in spec.overrides.items():
        redact.remember(name, value)
    for name, value in spec.inputs.items():
        redact.remember(name, value.path if isinstance(value, PathValue) else value)
    for step in spec.steps.values():
        for name, value in step.inputs.items():
            redact.remember(name, value)
    return redact
