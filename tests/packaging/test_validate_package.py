"""validate_package: the edge package in the AI SDK's runner against the model."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import edge_run
import output_checks
import pandas as pd
import pytest
import register_package
import validate_package
import validation_inputs

MODEL_NAME = "state-identifier"


@pytest.mark.slow
def test_validate_package_passes_real_package(validation_v1, package_v1, packaged):
    result = json.loads((validation_v1 / "validation.json").read_text())

    assert result["passed"] is True
    assert result["first_failure"] is None
    assert result["n_rows"] == 300 + 19 * 300
    assert result["n_windows"] == result["n_outputs"] == 20
    assert result["edge_states"] == result["expected_states"]
    assert result["package_version"] == "1"
    assert sorted(p.name for p in validation_v1.iterdir()) == [
        "predictions.png",
        "report.html",
        "runner_report.md",
        "validation.json",
    ]
    report = (validation_v1 / "report.html").read_text()
    assert "<th>passed</th><td>True</td>" in report
    assert "data:image/png;base64," in report


@pytest.mark.slow
def test_validate_package_leaves_no_runner_files(validation_v1, package_v1, packaged):
    package_files = sorted(p.name for p in package_v1.rglob("*"))

    assert not [name for name in package_files if "_tested" in name]
    assert not [name for name in package_files if "execution_report" in name]
    assert list((packaged.outputs / "validation-1-tmp").iterdir()) == []
    assert list((packaged.outputs / "validation-1-home").iterdir()) == []


def rewrite_entrypoint(package_dir: Path, change) -> None:
    """Apply ``change`` to entrypoint.py inside the edge zip and fix the checksums."""
    info = json.loads((package_dir / "package.json").read_text())
    edge_zip = package_dir / info["edge_package"]
    with zipfile.ZipFile(edge_zip) as outer:
        entries = {name: outer.read(name) for name in outer.namelist()}
    inner_name = next(name for name in entries if name.endswith(".zip"))
    inner_path = package_dir / "inner.zip"
    inner_path.write_bytes(entries[inner_name])
    with zipfile.ZipFile(inner_path) as inner:
        files = {name: inner.read(name) for name in inner.namelist()}
    files["entrypoint.py"] = change(files["entrypoint.py"].decode()).encode()
    with zipfile.ZipFile(inner_path, "w") as inner:
        for name, data in files.items():
            inner.writestr(name, data)
    entries[inner_name] = inner_path.read_bytes()
    inner_path.unlink()
    with zipfile.ZipFile(edge_zip, "w") as outer:
        for name, data in entries.items():
            outer.writestr(name, data)
    digest = hashlib.sha256(edge_zip.read_bytes()).hexdigest()
    (edge_zip.parent / f"{edge_zip.name}.sha256").write_text(
        f"{digest}  {edge_zip.name}\n"
    )
    info["edge_package_sha256"] = digest
    (package_dir / "package.json").write_text(json.dumps(info))


def shift_states(source: str) -> str:
    original = "result = {OUTPUT_NAME: OUTPUT_CAST(state)}"
    assert original in source
    return source.replace(
        original, "result = {OUTPUT_NAME: OUTPUT_CAST((state + 1) % 3)}"
    )


@pytest.mark.slow
def test_validate_package_rejects_tampered_entrypoint(package_v1, packaged, tmp_path):
    tampered = shutil.copytree(package_v1, tmp_path / "package")
    rewrite_entrypoint(tampered, shift_states)
    out = tmp_path / "validation"

    with (
        packaged.activate(),
        pytest.raises(validate_package.ValidationFailed) as failed,
    ):
        validate_package.validate(
            tampered,
            MODEL_NAME,
            "1",
            packaged.asset_folder,
            out,
            wheel_dir=packaged.wheel_dir,
        )

    result = json.loads((out / "validation.json").read_text())
    expected = result["expected_states"]
    assert result["passed"] is False
    assert result["first_failure"] == (
        f"Window 0 (payload rows 0-299): expected state={expected[0]}, "
        f"got {(expected[0] + 1) % 3}."
    )
    assert result["n_failures"] == 20
    assert "Window 0 (payload rows 0-299)" in str(failed.value)
    with (
        packaged.activate(),
        pytest.raises(
            register_package.RegistrationRejected,
            match="failed, so nothing was registered. First problem: Window 0",
        ),
    ):
        register_package.register(tampered, out, MODEL_NAME)


@pytest.mark.slow
def test_validate_package_reports_component_error(package_v1, packaged, tmp_path):
    broken = shutil.copytree(package_v1, tmp_path / "package")
    rewrite_entrypoint(
        broken,
        lambda source: source.replace(
            "if data.__class__ is list:", "if 1 / 0 or data.__class__ is list:"
        ),
    )

    with packaged.activate(), pytest.raises(edge_run.EdgeRunError) as failed:
        validate_package.validate(
            broken,
            MODEL_NAME,
            "1",
            packaged.asset_folder,
            tmp_path / "validation",
            wheel_dir=packaged.wheel_dir,
        )

    message = str(failed.value)
    assert "There was an error while running component 'state_identifier'" in message
    assert "ZeroDivisionError: division by zero" in message
    assert "You can check the test results" not in message


@pytest.mark.slow
def test_validate_package_rejects_data_missing_input(package_v1, packaged, tmp_path):
    frame = pd.read_parquet(packaged.asset_folder / "data.parquet").drop(columns="ph3")
    folder = tmp_path / "asset"
    folder.mkdir()
    frame.to_parquet(folder / "data.parquet")
    out = tmp_path / "validation"

    with (
        packaged.activate(),
        pytest.raises(ValueError, match=r"lacks the package inputs \['ph3'\]"),
    ):
        validate_package.validate(package_v1, MODEL_NAME, "1", folder, out)

    assert not (out / "validation.json").exists()


@pytest.mark.slow
def test_validate_package_rejects_other_model_version(package_v1, packaged, tmp_path):
    with (
        packaged.activate(),
        pytest.raises(
            ValueError,
            match="built from model 'state-identifier' version 1, but validation",
        ),
    ):
        validate_package.validate(
            package_v1, MODEL_NAME, "2", packaged.asset_folder, tmp_path / "out"
        )


def test_held_out_rows_takes_last_rows(asset_folder, sample_frame):
    frame = validation_inputs.held_out_rows(
        asset_folder, 900, ["ph1", "ph2", "ph3"], 300
    )

    assert len(frame) == 900
    assert frame["DateTime"].iloc[-1] == sample_frame["DateTime"].iloc[-1]


def test_held_out_rows_rejects_too_few_rows(asset_folder):
    with pytest.raises(ValueError, match=r"n_rows=100 is fewer than one window \(300"):
        validation_inputs.held_out_rows(asset_folder, 100, ["ph1"], 300)


def test_batches_group_rows_by_step():
    rows = [{"ph1": float(i)} for i in range(7)]

    batches = validation_inputs.batches(rows, 3)

    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert batches[2][0] == {"ph1": 6.0}


def test_read_package_rejects_changed_zip(tmp_path):
    edge = tmp_path / "edge"
    edge.mkdir()
    (edge / "p-edge_1.zip").write_bytes(b"changed")
    (edge / "p-edge_1.zip.sha256").write_text("0" * 64 + "  p-edge_1.zip\n")
    info = {"edge_package": "edge/p-edge_1.zip", "edge_package_sha256": "0" * 64}
    (tmp_path / "package.json").write_text(json.dumps(info))

    with pytest.raises(ValueError, match="file changed after packaging"):
        validation_inputs.read_package(tmp_path)


def test_check_types_names_wrong_types():
    declared = {"state": "Integer", "ph1_range": "String"}
    outputs = [
        {"state": 1, "ph1_range": '{"value": 1.0}'},
        {"state": 1.0, "ph1_range": '{"value": 1.0}'},
        {"state": True, "ph1_range": '{"value": 1.0}'},
        {"ph1_range": '{"value": 1.0}'},
        {"state": 2, "ph1_range": 3.5, "debug": 1},
    ]

    failures = output_checks.check_types(outputs, declared)

    assert failures == [
        "Output 1: state=1.0 is a float, but state is declared Integer.",
        "Output 2: state=True is a bool, but state is declared Integer.",
        "Output 3 lacks the declared variable 'state'.",
        "Output 4: ph1_range=3.5 is a float, but ph1_range is declared String.",
        "Output 4 has undeclared variables ['debug'].",
    ]


def test_check_metrics_requires_json_value():
    outputs = [
        {"ph1_range": '{"value": 1.5}'},
        {"ph1_range": "1.5"},
        {"ph1_range": '{"value": "high"}'},
        {"ph1_range": '{"value": NaN}'},
    ]

    failures = output_checks.check_metrics(outputs, ["ph1_range"])

    assert failures == [
        "Output 1: metric ph1_range='1.5' is not JSON like {\"value\": 1.5}.",
        "Output 2: metric ph1_range value 'high' is not a number.",
        "Output 3: metric ph1_range value nan is not finite.",
    ]


def test_check_states_names_first_mismatch():
    failures = output_checks.check_states(
        [0, 1, 2],
        [{"state": 0}, {"state": 2}, {"state": 2}],
        "state",
        lambda i: (i * 300, i * 300 + 299),
    )

    assert failures == ["Window 1 (payload rows 300-599): expected state=1, got 2."]


def test_check_count_reports_missing_outputs():
    assert output_checks.check_count([1, 2, 3], [{"state": 1}]) == [
        "The edge package emitted 1 outputs for 3 windows."
    ]
