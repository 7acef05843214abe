"""Tests of the ingest_data component on the sample data."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading

import pandas as pd
import pytest


@pytest.fixture
def file_server(tmp_path):
    """Serve a temporary folder over HTTP on a free loopback port."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_ingest_reads_parquet(ingest_data, sample_parquet, tmp_path):
    target = ingest_data.ingest(str(sample_parquet), tmp_path / "out")

    df = pd.read_parquet(target)
    assert target == tmp_path / "out" / "data.parquet"
    assert len(df) == 42079
    assert list(df.columns) == ["DateTime", "ph1", "ph2", "ph3"]
    assert str(df["DateTime"].dt.tz) == "UTC"
    assert df["DateTime"].iloc[0] == pd.Timestamp("2019-02-08 07:36:36.443", tz="UTC")
    assert df["ph1"].iloc[0] == pytest.approx(4732.89)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data.parquet"]


def test_ingest_reads_csv_like_parquet(ingest_data, datasets_dir, tmp_path):
    from_csv = ingest_data.ingest(str(datasets_dir / "si-sample.csv"), tmp_path / "csv")
    from_parquet = ingest_data.ingest(
        str(datasets_dir / "si-sample.parquet"), tmp_path / "parquet"
    )

    csv_df = pd.read_parquet(from_csv)
    parquet_df = pd.read_parquet(from_parquet)
    assert len(csv_df) == 42079
    assert str(csv_df["DateTime"].dt.tz) == "UTC"
    assert (csv_df["DateTime"] == parquet_df["DateTime"]).all()
    pd.testing.assert_frame_equal(
        csv_df[["ph1", "ph2", "ph3"]], parquet_df[["ph1", "ph2", "ph3"]]
    )


def test_ingest_keeps_label_column(ingest_data, labeled_parquet, tmp_path):
    df = pd.read_parquet(ingest_data.ingest(str(labeled_parquet), tmp_path / "out"))

    assert list(df.columns) == ["DateTime", "ph1", "ph2", "ph3", "class"]
    assert df["class"].value_counts().to_dict() == {
        0: 21979,
        2: 11400,
        1: 8400,
        -1: 300,
    }
    assert (df["class"].iloc[:300] == -1).all()


def test_ingest_accepts_folder_with_one_file(ingest_data, sample_parquet, tmp_path):
    folder = tmp_path / "asset"
    folder.mkdir()
    shutil.copyfile(sample_parquet, folder / "si-sample.parquet")

    df = pd.read_parquet(ingest_data.ingest(str(folder), tmp_path / "out"))

    assert len(df) == 42079


def test_ingest_rejects_truncated_parquet(ingest_data, sample_parquet, tmp_path):
    broken = tmp_path / "broken.parquet"
    content = sample_parquet.read_bytes()
    broken.write_bytes(content[: len(content) // 2])

    with pytest.raises(
        ingest_data.IngestError,
        match=r"broken\.parquet is not a readable parquet file: .*; re-export it or "
        "ingest the CSV",
    ):
        ingest_data.ingest(str(broken), tmp_path / "out")
    assert not (tmp_path / "out" / "data.parquet").exists()


def test_ingest_rejects_missing_timestamp_column(ingest_data, sample_frame, tmp_path):
    source = tmp_path / "renamed.parquet"
    sample_frame.rename(columns={"DateTime": "Time"}).to_parquet(source)

    with pytest.raises(
        ingest_data.IngestError,
        match=r"Timestamp column 'DateTime' not found; the file has columns "
        r"\['Time', 'ph1', 'ph2', 'ph3'\]. Set timestamp_column",
    ):
        ingest_data.ingest(str(source), tmp_path / "out")


def test_ingest_uses_configured_timestamp_column(ingest_data, sample_frame, tmp_path):
    source = tmp_path / "renamed.parquet"
    sample_frame.rename(columns={"DateTime": "Time"}).to_parquet(source)

    df = pd.read_parquet(ingest_data.ingest(str(source), tmp_path / "out", "Time"))

    assert str(df["Time"].dt.tz) == "UTC"


def test_ingest_rejects_unparseable_timestamp(ingest_data, datasets_dir, tmp_path):
    lines = (datasets_dir / "si-sample.csv").read_text().splitlines()
    lines[4] = "not a date," + lines[4].split(",", 1)[1]
    source = tmp_path / "bad-time.csv"
    source.write_text("\n".join(lines) + "\n")

    with pytest.raises(
        ingest_data.IngestError,
        match=r"Timestamp column 'DateTime' has 1 value\(s\) that are not dates, the "
        r"first at row 3: 'not a date'",
    ):
        ingest_data.ingest(str(source), tmp_path / "out")


def test_ingest_takes_naive_timestamps_as_utc(ingest_data, sample_frame, tmp_path):
    source = tmp_path / "naive.parquet"
    naive = sample_frame.assign(DateTime=sample_frame["DateTime"].dt.tz_localize(None))
    naive.to_parquet(source)

    df = pd.read_parquet(ingest_data.ingest(str(source), tmp_path / "out"))

    assert (df["DateTime"] == sample_frame["DateTime"]).all()


def test_ingest_rejects_empty_csv(ingest_data, tmp_path):
    source = tmp_path / "empty.csv"
    source.write_text("")

    with pytest.raises(ingest_data.IngestError, match=r"empty\.csv is empty"):
        ingest_data.ingest(str(source), tmp_path / "out")


def test_ingest_rejects_missing_file(ingest_data, tmp_path):
    with pytest.raises(
        ingest_data.IngestError, match=r"Input file .*nothing\.parquet does not exist"
    ):
        ingest_data.ingest(str(tmp_path / "nothing.parquet"), tmp_path / "out")


def test_ingest_downloads_url(ingest_data, file_server, sample_parquet, tmp_path):
    root, base_url = file_server
    shutil.copyfile(sample_parquet, root / "si-sample.parquet")

    df = pd.read_parquet(
        ingest_data.ingest(f"{base_url}/si-sample.parquet", tmp_path / "out")
    )

    assert len(df) == 42079
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data.parquet"]


def test_ingest_reports_http_404_with_url(ingest_data, file_server, tmp_path):
    _, base_url = file_server
    url = f"{base_url}/datasets/missing.parquet"

    with pytest.raises(ingest_data.IngestError) as caught:
        ingest_data.ingest(url, tmp_path / "out")

    message = str(caught.value)
    assert message.startswith(f"Download of {url} failed: HTTP 404")
    assert "pass its local path as raw_data" in message
    assert not (tmp_path / "out").exists()


def test_ingest_main_with_source_url(
    ingest_data, file_server, sample_parquet, tmp_path
):
    root, base_url = file_server
    shutil.copyfile(sample_parquet, root / "data.parquet")
    out = tmp_path / "out"

    code = ingest_data.main(
        ["--source-url", f"{base_url}/data.parquet", "--data", str(out)]
    )

    assert code == 0
    assert len(pd.read_parquet(out / "data.parquet")) == 42079


def test_ingest_main_fails_with_message(ingest_data, sample_parquet, tmp_path, capsys):
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(sample_parquet.read_bytes()[:1000])
    out = tmp_path / "out"
    out.mkdir()

    code = ingest_data.main(["--raw-data", str(broken), "--data", str(out)])

    first_line = capsys.readouterr().err.splitlines()[0]
    assert code == 1
    assert first_line.startswith(f"Ingest failed: {broken} is not a readable parquet")
    assert list(out.iterdir()) == []


def test_choose_source_rejects_both_inputs(ingest_data):
    with pytest.raises(ingest_data.IngestError, match="Set only one of them"):
        ingest_data.choose_source("data.parquet", "https://127.0.0.1/data.parquet")


def test_choose_source_rejects_no_input(ingest_data):
    with pytest.raises(ingest_data.IngestError, match="No input given. Set raw_data"):
        ingest_data.choose_source(None, None)


def test_choose_source_rejects_non_http_url(ingest_data):
    with pytest.raises(
        ingest_data.IngestError, match=r"source_url 'ftp://host/x.csv' is not an http"
    ):
        ingest_data.choose_source(None, "ftp://host/x.csv")
