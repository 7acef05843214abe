"""Bad data and bad sources given to the data asset components."""

from __future__ import annotations

import io
import logging
import sys

import pandas as pd
import pytest
from breakage_helpers import load_script

ingest_data = load_script("ingest_data")
validate_data = load_script("validate_data")
register_data = load_script("register_data")
data_asset_stores = sys.modules["data_asset_stores"]

SIGNATURE = "sig=SECRET"


def sas_query() -> str:
    return f"sv=2022-11-02&sp=r&se=2030-01-01T00%3A00%3A00Z&{SIGNATURE}"


def parquet_bytes(frame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def test_ingest_download_hides_sas_signature(
    tmp_path, http_server, small_frame, caplog, capsys
):
    files, base_url = http_server
    files["b.parquet"] = parquet_bytes(small_frame)
    caplog.set_level(logging.INFO)

    code = ingest_data.main(
        [
            "--source-url",
            f"{base_url}/ok/b.parquet?{sas_query()}",
            "--data",
            str(tmp_path / "out"),
        ]
    )

    assert code == 0
    assert (tmp_path / "out" / "data.parquet").is_file()
    assert SIGNATURE not in caplog.text
    assert "/ok/b.parquet?<redacted>" in caplog.text
    assert SIGNATURE not in capsys.readouterr().err


@pytest.mark.parametrize("path", ["status/404", "status/500", "short/b.parquet"])
def test_ingest_download_error_hides_sas_signature(
    tmp_path, http_server, small_frame, path
):
    files, base_url = http_server
    files["b.parquet"] = parquet_bytes(small_frame)

    with pytest.raises(ingest_data.IngestError, match="Download of") as info:
        ingest_data.download(f"{base_url}/{path}?{sas_query()}", tmp_path)

    assert SIGNATURE not in str(info.value)
    assert f"/{path}?<redacted>" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_ingest_command_quotes_source_url(repo_root):
    spec = (repo_root / "components" / "ingest_data" / "component.yaml").read_text()

    assert "$[[--source-url '${{inputs.source_url}}']]" in spec


def test_ingest_rejects_epoch_number_timestamps(small_frame):
    frame = small_frame.assign(DateTime=small_frame["DateTime"].astype("int64") // 1000)

    with pytest.raises(ingest_data.IngestError, match="1549611396443") as info:
        ingest_data.parse_timestamps(frame, "DateTime")

    assert "int64" in str(info.value)
    assert "ISO 8601" in str(info.value)


def test_validate_rejects_infinite_signal_values(small_frame):
    frame = small_frame.copy()
    frame.loc[[7, 9], "ph1"] = [float("inf"), float("-inf")]

    with pytest.raises(validate_data.ValidationError, match="numeric_signals") as info:
        validate_data.validate_frame(frame, ["ph1", "ph2", "ph3"])

    message = str(info.value)
    assert "Column 'ph1' has 2 infinite value(s), the first at row 7" in message
    assert "2019-02-08T07:36:38.193000+00:00" in message
    assert "ph2" not in message.split("\n", 1)[1]


def test_register_reports_unwritable_store(tmp_path, small_frame):
    data = tmp_path / "validated"
    data.mkdir()
    small_frame.to_parquet(data / "data.parquet", index=False)
    root = tmp_path / "assets-file"
    root.write_text("not a folder")
    store = data_asset_stores.LocalAssetStore(root)

    with pytest.raises(register_data.RegisterError, match="Cannot write") as info:
        register_data.register(data, "state-identifier-data", store)

    assert str(root) in str(info.value)
    assert "PLANT2EDGE_DATA_ASSETS" in str(info.value)
    assert root.read_text() == "not a folder"


def test_ingest_names_format_of_mixed_timestamps():
    frame = pd.DataFrame(
        {
            "DateTime": ["2019-02-08 07:36:36", "2019-02-08T07:36:37+00:00"],
            "ph1": [1.0, 2.0],
        }
    )

    with pytest.raises(ingest_data.IngestError, match="format") as info:
        ingest_data.parse_timestamps(frame, "DateTime")

    message = str(info.value)
    assert "'2019-02-08 07:36:36'" in message
    assert "row 1: '2019-02-08T07:36:37+00:00'" in message
    assert "ISO 8601" in message


def test_register_reports_corrupt_asset_json(tmp_path, small_frame):
    data = tmp_path / "validated"
    data.mkdir()
    small_frame.to_parquet(data / "data.parquet", index=False)
    version = tmp_path / "assets" / "state-identifier-data" / "1"
    version.mkdir(parents=True)
    (version / "asset.json").write_text('{"name": "state-identifier-data", "vers')
    store = data_asset_stores.LocalAssetStore(tmp_path / "assets")

    with pytest.raises(register_data.RegisterError, match="not valid JSON") as info:
        register_data.register(data, "state-identifier-data", store)

    assert str(version / "asset.json") in str(info.value)
    assert sorted(p.name for p in version.parent.iterdir()) == ["1"]
