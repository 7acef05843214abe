"""Tests of the validate_data component: the sample passes, each defect is rejected."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

SIGNALS = ["ph1", "ph2", "ph3"]


@pytest.fixture
def frame(sample_frame) -> pd.DataFrame:
    return sample_frame.copy()


def run_validate(validate_data, df, tmp_path, write_data_folder, **options):
    """Validate ``df`` written as a data folder; return the report and output dirs."""
    data = write_data_folder(df, tmp_path / "in")
    report_dir, validated_dir = tmp_path / "report", tmp_path / "validated"
    report = validate_data.validate(
        data, report_dir, validated_dir, options.pop("signals", SIGNALS), **options
    )
    return report, report_dir, validated_dir


def test_validate_passes_sample(validate_data, frame, tmp_path, write_data_folder):
    report, report_dir, validated_dir = run_validate(
        validate_data, frame, tmp_path, write_data_folder
    )

    assert report["valid"] is True
    assert report["row_count"] == 42079
    assert report["sampling_interval_seconds"] == pytest.approx(0.25)
    assert report["gaps"]["count"] == 0
    assert report["gaps"]["threshold_seconds"] == pytest.approx(0.5)
    assert report["missing_values"] == {"ph1": 0, "ph2": 0, "ph3": 0}
    assert report["time_start"] == "2019-02-08T07:36:36.443000+00:00"
    assert report["time_end"] == "2019-02-08T10:31:31.443000+00:00"
    assert [check["name"] for check in report["checks"]] == [
        "not_empty",
        "columns_present",
        "timestamps_parse",
        "timestamps_sorted",
        "timestamps_unique",
        "max_gap",
        "numeric_signals",
        "missing_values",
    ]
    assert all(check["passed"] for check in report["checks"])
    assert json.loads((report_dir / "report.json").read_text())["valid"] is True
    passed_on = pd.read_parquet(validated_dir / "data.parquet")
    pd.testing.assert_frame_equal(passed_on, frame)


def test_validate_keeps_label_column(
    validate_data, labeled_parquet, tmp_path, write_data_folder
):
    df = pd.read_parquet(labeled_parquet)
    _, _, validated_dir = run_validate(validate_data, df, tmp_path, write_data_folder)

    passed_on = pd.read_parquet(validated_dir / "data.parquet")
    assert list(passed_on.columns) == ["DateTime", "ph1", "ph2", "ph3", "class"]
    assert (passed_on["class"] == df["class"]).all()


def test_validate_rejects_missing_column(
    validate_data, frame, tmp_path, write_data_folder
):
    with pytest.raises(
        validate_data.ValidationError,
        match=r"(?s)^Validation failed: 1 of \d+ checks failed \(columns_present\).*"
        r"Required column\(s\) \['ph3'\] not found; the data has columns "
        r"\['DateTime', 'ph1', 'ph2'\]. Rename the columns",
    ):
        run_validate(
            validate_data, frame.drop(columns="ph3"), tmp_path, write_data_folder
        )
    assert not (tmp_path / "validated" / "data.parquet").exists()


def test_validate_rejects_non_numeric_column(
    validate_data, ingest_data, datasets_dir, tmp_path
):
    lines = (datasets_dir / "si-sample.csv").read_text().splitlines()
    cells = lines[11].split(",")
    cells[2] = "sensor error"
    lines[11] = ",".join(cells)
    source = tmp_path / "bad-value.csv"
    source.write_text("\n".join(lines) + "\n")
    ingest_data.ingest(str(source), tmp_path / "ingested")

    with pytest.raises(
        validate_data.ValidationError,
        match=r"numeric_signals: Column 'ph2' is not numeric \(dtype \w+\): 1 value\(s\)"
        r" are not numbers, the first at row 10 \(2019-02-08T07:36:38.943000\+00:00\):"
        r" 'sensor error'\. Export the signals as numbers",
    ):
        validate_data.validate(
            tmp_path / "ingested", tmp_path / "report", None, SIGNALS
        )


def test_validate_rejects_empty_file(validate_data, frame, tmp_path, write_data_folder):
    with pytest.raises(
        validate_data.ValidationError,
        match=r"\(not_empty\).*\n- not_empty: The data has no rows",
    ):
        run_validate(validate_data, frame.iloc[:0], tmp_path, write_data_folder)


def test_validate_rejects_empty_csv(validate_data, tmp_path):
    source = tmp_path / "empty.csv"
    source.write_text("")

    with pytest.raises(validate_data.ValidationError, match="The data has no rows"):
        validate_data.validate(source, tmp_path / "report", None, SIGNALS)


def test_validate_rejects_truncated_parquet(validate_data, sample_parquet, tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    content = sample_parquet.read_bytes()
    (data / "data.parquet").write_bytes(content[: len(content) // 2])

    with pytest.raises(
        validate_data.ValidationError,
        match=r"in/data\.parquet is not a readable parquet file: .*; re-export it or "
        "ingest the CSV",
    ):
        validate_data.validate(data, tmp_path / "report", tmp_path / "out", SIGNALS)

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["valid"] is False
    assert report["checks"][0]["name"] == "readable"
    assert not (tmp_path / "out").exists()


def test_validate_rejects_unsorted_timestamps(
    validate_data, frame, tmp_path, write_data_folder
):
    swapped = frame.iloc[[*range(100), 101, 100, *range(102, len(frame))]]

    with pytest.raises(
        validate_data.ValidationError,
        match=r"timestamps_sorted: Timestamps are not sorted: 1 row\(s\) go back in "
        r"time, the first at row 101 \(2019-02-08T07:37:01.443000\+00:00\), which is "
        r"earlier than row 100 \(2019-02-08T07:37:01.693000\+00:00\)\. Sort the rows "
        "by DateTime",
    ):
        run_validate(
            validate_data, swapped.reset_index(drop=True), tmp_path, write_data_folder
        )


def test_validate_rejects_duplicate_timestamps(
    validate_data, frame, tmp_path, write_data_folder
):
    frame.loc[200, "DateTime"] = frame.loc[199, "DateTime"]

    with pytest.raises(
        validate_data.ValidationError,
        match=r"timestamps_unique: Timestamps are not unique: 1 row\(s\) repeat an "
        r"earlier timestamp, the first at row 200, which has the same timestamp "
        r"2019-02-08T07:37:26.193000\+00:00 as row 199\. Remove the duplicate rows",
    ):
        run_validate(validate_data, frame, tmp_path, write_data_folder)


def test_validate_rejects_long_gap(validate_data, frame, tmp_path, write_data_folder):
    with_gap = frame.drop(index=range(20000, 20400)).reset_index(drop=True)

    with pytest.raises(validate_data.ValidationError) as caught:
        run_validate(validate_data, with_gap, tmp_path, write_data_folder)

    message = str(caught.value)
    assert message.splitlines()[0].startswith(
        "Validation failed: 1 of 8 checks failed (max_gap) for "
    )
    assert (
        "Found 1 gap(s) longer than max_gap_seconds=60 (longest 100 s); the first is "
        "100 s between row 19999 (2019-02-08T08:59:39.943000+00:00) and row 20000 "
        "(2019-02-08T09:01:19.943000+00:00). Split the recording" in message
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["valid"] is False
    assert report["gaps"]["items"] == [
        {
            "row": 20000,
            "start": "2019-02-08T08:59:39.943000+00:00",
            "end": "2019-02-08T09:01:19.943000+00:00",
            "seconds": 100.0,
        }
    ]
    assert not (tmp_path / "validated" / "data.parquet").exists()


def test_validate_accepts_gap_below_limit(
    validate_data, frame, tmp_path, write_data_folder
):
    with_gap = frame.drop(index=range(20000, 20400)).reset_index(drop=True)

    report, _, _ = run_validate(
        validate_data, with_gap, tmp_path, write_data_folder, max_gap_seconds=120
    )

    assert report["valid"] is True
    assert report["gaps"]["count"] == 1
    assert report["gaps"]["longest_seconds"] == pytest.approx(100.0)


def test_validate_rejects_missing_values(
    validate_data, frame, tmp_path, write_data_folder
):
    frame.loc[1000:1049, "ph1"] = np.nan

    with pytest.raises(
        validate_data.ValidationError,
        match=r"missing_values: Column 'ph1' has 50 missing value\(s\) \(0\.12%\), the "
        r"first at row 1000 \(2019-02-08T07:40:46.193000\+00:00\), more than "
        r"max_missing_fraction=0\. Fill or drop",
    ):
        run_validate(validate_data, frame, tmp_path, write_data_folder)


def test_validate_accepts_missing_below_limit(
    validate_data, frame, tmp_path, write_data_folder
):
    frame.loc[1000:1049, "ph1"] = np.nan

    report, _, _ = run_validate(
        validate_data, frame, tmp_path, write_data_folder, max_missing_fraction=0.01
    )

    assert report["valid"] is True
    assert report["missing_values"]["ph1"] == 50


def test_validate_rejects_unparseable_timestamps(validate_data, frame, tmp_path):
    frame["DateTime"] = frame["DateTime"].astype(str).astype(object)
    frame.loc[7, "DateTime"] = "yesterday"
    source = tmp_path / "text-times.csv"
    frame.to_csv(source, index=False)

    with pytest.raises(
        validate_data.ValidationError,
        match=r"timestamps_parse: Timestamp column 'DateTime' has 1 missing or "
        r"unparseable value\(s\), the first at row 7: 'yesterday'",
    ):
        validate_data.validate(source, tmp_path / "report", None, SIGNALS)


def test_validate_lists_every_failed_check(
    validate_data, frame, tmp_path, write_data_folder
):
    frame.loc[200, "DateTime"] = frame.loc[199, "DateTime"]
    frame.loc[5, "ph3"] = np.nan

    with pytest.raises(validate_data.ValidationError) as caught:
        run_validate(validate_data, frame, tmp_path, write_data_folder)

    lines = str(caught.value).splitlines()
    assert lines[0].startswith(
        "Validation failed: 2 of 8 checks failed (timestamps_unique, missing_values)"
    )
    assert lines[1].startswith("- timestamps_unique: ")
    assert lines[2].startswith("- missing_values: Column 'ph3' has 1 missing")


def test_validate_main_fails_with_summary_first(
    validate_data, frame, tmp_path, write_data_folder, capsys
):
    data = write_data_folder(frame.drop(columns="ph2"), tmp_path / "in")
    report_dir, validated_dir = tmp_path / "report", tmp_path / "validated"
    validated_dir.mkdir()

    code = validate_data.main(
        [
            "--data", str(data),
            "--validation-report", str(report_dir),
            "--validated-data", str(validated_dir),
        ]
    )  # fmt: skip

    stderr_lines = capsys.readouterr().err.splitlines()
    assert code == 1
    assert stderr_lines[0] == (
        f"Validation failed: 1 of 8 checks failed (columns_present) for {data}"
    )
    assert "['ph2'] not found" in stderr_lines[1]
    assert json.loads((report_dir / "report.json").read_text())["valid"] is False
    assert list(validated_dir.iterdir()) == []


def test_validate_main_accepts_spaced_columns(
    validate_data, frame, tmp_path, write_data_folder
):
    data = write_data_folder(frame, tmp_path / "in")

    code = validate_data.main(
        [
            "--data", str(data),
            "--signal-columns", "ph1,", "ph2,", "ph3",
            "--max-gap-seconds", "30",
            "--validation-report", str(tmp_path / "report"),
            "--validated-data", str(tmp_path / "validated"),
        ]
    )  # fmt: skip

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert code == 0
    assert report["signal_columns"] == SIGNALS
    assert report["max_gap_seconds"] == 30.0
    assert (tmp_path / "validated" / "data.parquet").is_file()


def test_validate_rejects_invalid_limits(validate_data, frame):
    with pytest.raises(
        validate_data.ValidationError, match="max_gap_seconds must be greater than 0"
    ):
        validate_data.validate_frame(frame, SIGNALS, max_gap_seconds=0)
    with pytest.raises(
        validate_data.ValidationError,
        match="max_missing_fraction must be between 0 and 1, got 1.5",
    ):
        validate_data.validate_frame(frame, SIGNALS, max_missing_fraction=1.5)


def test_parse_columns_rejects_empty_list(validate_data):
    with pytest.raises(validate_data.ValidationError, match="names no column"):
        validate_data.parse_columns(" , ")
