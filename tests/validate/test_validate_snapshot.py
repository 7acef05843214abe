"""The code snapshot check: caches, test data and size, with mldesigner's selection."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plant2edge.validate import validate
from plant2edge.validate_snapshot import snapshot_files

FIXTURES = Path(__file__).parent / "fixtures"
CODE_LINE = 40  # line of `code: ../code` in components/good.yaml


@pytest.fixture
def component(tmp_path) -> Path:
    """Copy the clean fixture component and its code folder into tmp_path."""
    shutil.copytree(FIXTURES / "code", tmp_path / "code")
    (tmp_path / "components").mkdir()
    spec = tmp_path / "components" / "good.yaml"
    shutil.copy(FIXTURES / "components" / "good.yaml", spec)
    return spec


def test_snapshot_of_clean_component_passes(component):
    assert validate([component]).findings == []


def test_snapshot_rejects_pytest_cache_and_pyc(component):
    code = component.parent.parent / "code"
    (code / ".pytest_cache" / "v").mkdir(parents=True)
    (code / ".pytest_cache" / "v" / "lastfailed").write_text("{}")
    (code / "old.pyc").write_bytes(b"\0" * 16)

    [finding] = validate([component]).findings

    assert finding.line == CODE_LINE
    assert finding.message == (
        "code snapshot code/ contains caches: .pytest_cache/v/lastfailed, old.pyc"
    )
    assert "code/.amlignore" in finding.fix


def test_snapshot_rejects_parquet_and_csv(component):
    code = component.parent.parent / "code"
    (code / "tests").mkdir()
    (code / "tests" / "sample.parquet").write_bytes(b"PAR1")
    (code / "sample.csv").write_text("a,b\n1,2\n")

    [finding] = validate([component]).findings

    assert finding.line == CODE_LINE
    assert finding.message == (
        "code snapshot code/ contains data files: sample.csv, tests/sample.parquet"
    )


def test_snapshot_rejects_folder_over_limit(component):
    code = component.parent.parent / "code"
    (code / "weights.bin").write_bytes(b"\0" * 300_000)

    [finding] = validate([component], limit_mb=0.25).findings

    assert finding.line == CODE_LINE
    assert finding.message.startswith("code snapshot code/ is 0.3 MB in 3 files, over")
    assert "the limit of 0.25 MB" in finding.message
    assert "largest: weights.bin (0.3 MB)" in finding.message
    assert "--max-snapshot-mb" in finding.fix


def test_snapshot_honours_amlignore(component):
    code = component.parent.parent / "code"
    (code / "sample.parquet").write_bytes(b"PAR1")
    (code / ".amlignore").write_text("*.parquet\n")

    assert validate([component]).findings == []


def test_snapshot_ignores_pycache_like_mldesigner(component):
    code = component.parent.parent / "code"
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "step.cpython-311.pyc").write_bytes(b"\0" * 16)

    assert validate([component]).findings == []


def test_snapshot_selection_matches_mldesigner_compile(component, tmp_path):
    code = component.parent.parent / "code"
    (code / "__pycache__").mkdir()
    (code / "__pycache__" / "step.cpython-311.pyc").write_bytes(b"\0")
    (code / ".pytest_cache").mkdir()
    (code / ".pytest_cache" / "README.md").write_text("cache")
    (code / "data.parquet").write_bytes(b"PAR1")
    (code / "notes.txt").write_text("ignored")
    (code / ".amlignore").write_text("notes.txt\n")
    mldesigner = Path(sys.executable).parent / "mldesigner"
    output = tmp_path / "compiled"

    subprocess.run(
        [
            str(mldesigner),
            "compile",
            "--source",
            str(component),
            "--output",
            str(output),
        ],
        check=True,
        capture_output=True,
    )

    compiled = {
        path.relative_to(output / "fixture_step").as_posix()
        for path in (output / "fixture_step").rglob("*")
        if path.is_file()
    }
    selected = {item.relative for item in snapshot_files(code)}
    # compile writes the component spec itself under its own name.
    assert compiled - {"good.yaml"} == selected
    assert "data.parquet" in selected
    assert ".pytest_cache/README.md" in selected
    assert "notes.txt" not in selected
