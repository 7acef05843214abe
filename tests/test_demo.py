"""The demo's data fetching: local files, one download per URL, clear errors."""

from __future__ import annotations

import http.server
import threading
from typing import ClassVar

import pytest

from plant2edge import demo


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        if self.path != "/si-sample.parquet":
            self.send_error(404)
            return
        body = b"PAR1 not really parquet"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _CountingHandler.requests = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _CountingHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_data_downloads_url_once(p2e_home, server):
    url = f"{server}/si-sample.parquet"

    first = demo.fetch_data(url)
    second = demo.fetch_data(url)

    assert first == second
    assert first.name == "si-sample.parquet"
    assert first.read_bytes() == b"PAR1 not really parquet"
    assert _CountingHandler.requests == ["/si-sample.parquet"]
    assert not list(first.parent.glob("*.part"))


def test_fetch_data_reports_http_error(p2e_home, server):
    url = f"{server}/missing.parquet"

    with pytest.raises(demo.DemoError, match=r"missing\.parquet failed: 404.*DATA="):
        demo.fetch_data(url)

    assert not list((p2e_home / "cache").rglob("missing.parquet*"))


def test_fetch_data_rejects_missing_local_file(tmp_path):
    missing = tmp_path / "nothing.parquet"

    with pytest.raises(demo.DemoError, match=r"Data file not found: .*nothing"):
        demo.fetch_data(str(missing))


def test_fetch_data_returns_local_file(sample_parquet):
    assert demo.fetch_data(str(sample_parquet)) == sample_parquet.resolve()
