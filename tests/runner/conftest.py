"""Fixtures for the local runner tests: fixture pipelines and a loopback HTTP server."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
COMPONENTS = FIXTURES / "components"
PIPELINES = FIXTURES / "pipelines"

PIPELINE_HEADER = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
settings:
  default_compute: azureml:cpu-cluster
"""


@pytest.fixture(scope="session")
def mlflow_db_template(tmp_path_factory) -> Path:
    """Create an empty, migrated MLflow SQLite store once per session.

    Creating the store runs MLflow's migrations, which take seconds; copying
    the finished file into each test's home gives the same real store.
    """
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow_db(p2e_home, mlflow_db_template) -> Path:
    """Give the isolated home a fresh copy of the migrated MLflow store."""
    path = p2e_home / "mlflow.db"
    shutil.copyfile(mlflow_db_template, path)
    return path


@pytest.fixture
def pipelines_dir() -> Path:
    return PIPELINES


@pytest.fixture
def write_pipeline(tmp_path):
    """Write a pipeline YAML, replacing ``{components}`` by the fixture folder."""

    def write(body: str, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        path.write_text(PIPELINE_HEADER + body.replace("{components}", str(COMPONENTS)))
        return path

    return write


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_server(tmp_path):
    """Serve a fresh folder on 127.0.0.1 at a free port; yield (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
