"""MLflow runs for a pipeline and its steps, and the MLflow model registry.

As in Azure ML, the pipeline gets a parent run and each step a child run
(tag ``mlflow.parentRunId``), so a component's ``mlflow.start_run()`` attaches
to its step's run through ``MLFLOW_RUN_ID``.
"""

from __future__ import annotations

import fcntl
import logging
import re
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from plant2edge import settings
from plant2edge.local.errors import InputResolutionError, PipelineError
from plant2edge.local.record import redact_url

logger = logging.getLogger(__name__)

PARENT_RUN_TAG = "mlflow.parentRunId"


class Tracking:
    """An MLflow client bound to the tracking and registry URIs from settings."""

    def __init__(self) -> None:
        self.tracking_uri = settings.tracking_uri()
        self.registry_uri = settings.registry_uri()
        if self.tracking_uri.startswith("sqlite:"):
            settings.home().mkdir(parents=True, exist_ok=True)
        if self.is_local_sqlite:
            self.client = self._open_sqlite_store()
        else:
            self.client = MlflowClient(self.tracking_uri, self.registry_uri)

    @property
    def is_local_sqlite(self) -> bool:
        return self.tracking_uri.startswith("sqlite:")

    def _open_sqlite_store(self) -> MlflowClient:
        """Return a client of the SQLite store, creating its tables one process at a time.

        MLflow (checked with 3.15) creates the tables on first use without a
        lock, so two runs starting together on a new store break each other's
        migrations. The lock file sits beside the database file.
        """
        database = Path(self.tracking_uri.removeprefix("sqlite:///"))
        try:
            with open(database.with_name(database.name + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                client = MlflowClient(self.tracking_uri, self.registry_uri)
                client.search_registered_models(max_results=1)
                return client
        except (MlflowException, SQLAlchemyError, OSError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            reason = str(getattr(exc, "orig", None) or reason).splitlines()[0]
            raise PipelineError(
                f"Cannot open the MLflow store {redact_url(self.tracking_uri)}: "
                f"{reason}. Set {settings.HOME_ENV} to a writable folder, or "
                "MLFLOW_TRACKING_URI to a store you can write to."
            ) from exc

    def ensure_experiment(self, name: str) -> str:
        """Return the id of experiment ``name``, creating it when missing."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(
                    name, artifact_location=self._artifact_location(name)
                )
            except MlflowException:
                # Another process created it between the lookup and the create.
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage != "active":
            raise PipelineError(
                f"MLflow experiment {name!r} is deleted. Restore it with "
                f"'mlflow experiments restore --experiment-id "
                f"{experiment.experiment_id}', or set another experiment_name."
            )
        return experiment.experiment_id

    def _artifact_location(self, name: str) -> str | None:
        # Without an explicit location MLflow's SQLite store writes artifacts to
        # ./mlruns, relative to the step's working directory.
        if not self.is_local_sqlite:
            return None
        folder = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "experiment"
        return (settings.artifacts_root() / folder).as_uri()

    def start_run(self, experiment_id, run_name, parent_run_id=None, tags=None) -> str:
        tags = dict(tags or {})
        if parent_run_id:
            tags[PARENT_RUN_TAG] = parent_run_id
        run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        return run.info.run_id

    def end_run(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def model_versions(self, name: str) -> list[str]:
        versions = self.client.search_model_versions(f"name='{_quote(name)}'")
        return sorted((str(v.version) for v in versions), key=int)

    def download_model(self, name: str, version: str, destination: Path):
        """Download a model version (or ``latest``) and return ``(version, path)``."""
        versions = self.model_versions(name)
        if not versions:
            raise InputResolutionError(
                f"Model {name!r} not found in the MLflow registry at "
                f"{redact_url(self.registry_uri)}. Register it first, or fix the name."
            )
        if version == "latest":
            version = versions[-1]
        elif version not in versions:
            raise InputResolutionError(
                f"Model {name!r} has no version {version!r}. Versions: "
                f"{', '.join(versions)}. Use one of them or '{name}@latest'."
            )
        uri = self.client.get_model_version_download_uri(name, version)
        destination.mkdir(parents=True, exist_ok=True)
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(destination), tracking_uri=self.tracking_uri
        )
        return version, Path(local)

    def register_model(self, name: str, folder: Path, run_id: str) -> str:
        """Log ``folder`` to run ``run_id`` and register it as a new model version."""
        artifact_path = f"outputs/{name}"
        self.client.log_artifacts(run_id, str(folder), artifact_path)
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = self.client.create_model_version(
            name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id
        )
        return str(version.version)


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
