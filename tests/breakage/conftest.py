"""Fixtures for the breakage tests: component scripts, a loopback HTTP server, data."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

FIXTURE_COMPONENTS = Path(__file__).parent / "fixtures" / "components"

HANG_SECONDS = 3

PIPELINE_HEADER = """\
$schema: https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json
type: pipeline
settings:
  default_compute: azureml:cpu-cluster
"""


@pytest.fixture
def write_pipeline(tmp_path):
    """Write a pipeline YAML, replacing ``{components}`` by the fixture folder."""

    def write(body: str, name: str = "pipeline.yaml") -> Path:
        path = tmp_path / name
        text = body.replace("{components}", str(FIXTURE_COMPONENTS))
        path.write_text(PIPELINE_HEADER + text)
        return path

    return write


@pytest.fixture(scope="session")
def small_frame(sample_parquet) -> pd.DataFrame:
    """The first 1,200 rows of the sample data: DateTime (UTC), ph1, ph2, ph3."""
    return pd.read_parquet(sample_parquet).iloc[:1200].reset_index(drop=True)


class _Handler(BaseHTTPRequestHandler):
    """Serve ``/ok/<name>`` from ``files`` and test failures of a download.

    ``/short/<name>`` sends half of the file, ``/status/<code>`` an HTTP error
    and ``/hang`` nothing for HANG_SECONDS.
    """

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0] == "status":
            self.send_error(int(parts[1]))
            return
        if parts[0] == "hang":
            time.sleep(HANG_SECONDS)
            return
        if parts[0] == "short":
            body = self.server.files[parts[1]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return
        body = self.server.files.get(parts[-1])
        if parts[0] != "ok" or body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def http_server():
    """Yield (files dict, base URL) of a server on 127.0.0.1 at a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.files = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.files, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
