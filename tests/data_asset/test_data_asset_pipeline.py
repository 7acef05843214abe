"""End-to-end runs of pipelines/data_asset.yaml through the local runner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from plant2edge import settings

pytestmark = pytest.mark.slow

NAME = "state-identifier-data"


def run(repo_root: Path, raw_data: Path):
    from plant2edge.runner import run_pipeline

    return run_pipeline(
        repo_root / "pipelines" / "data_asset.yaml",
        overrides={"inputs.raw_data": str(raw_data)},
        stream_logs=False,
    )


def store_files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_pipeline_registers_sample_once(repo_root, sample_parquet, p2e_home):
    first = run(repo_root, sample_parquet)

    assert first.status == "Completed", first.error
    info = json.loads((first.outputs["asset_info"] / "asset.json").read_text())
    assert info["version"] == "1"
    assert info["created"] is True
    version_dir = settings.data_assets_dir() / NAME / "1"
    asset = json.loads((version_dir / "asset.json").read_text())
    assert asset["tags"]["row_count"] == "42079"
    assert asset["tags"]["time_start"] == "2019-02-08T07:36:36.443000Z"
    assert asset["tags"]["time_end"] == "2019-02-08T10:31:31.443000Z"
    assert asset["tags"]["content_sha256"] == info["tags"]["content_sha256"]
    stored = pd.read_parquet(version_dir / "data" / "data.parquet")
    assert len(stored) == 42079
    page = (first.outputs["profile_report"] / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') == 4
    assert "<h2>Signals over time</h2>" in page
    assert "<h2>Correlations</h2>" in page
    report = json.loads(
        (first.outputs["validation_report"] / "report.json").read_text()
    )
    assert report["valid"] is True
    assert report["sampling_interval_seconds"] == pytest.approx(0.25)
    before = store_files(settings.data_assets_dir())

    second = run(repo_root, sample_parquet)

    assert second.status == "Completed", second.error
    again = json.loads((second.outputs["asset_info"] / "asset.json").read_text())
    assert again["version"] == "1"
    assert again["created"] is False
    assert sorted(p.name for p in (settings.data_assets_dir() / NAME).iterdir()) == [
        "1"
    ]
    assert store_files(settings.data_assets_dir()) == before


def test_pipeline_fails_at_validate_on_missing_column(
    data_asset_stores, repo_root, sample_frame, register_data, tmp_path, p2e_home
):
    existing = tmp_path / "existing"
    existing.mkdir()
    sample_frame.to_parquet(existing / "data.parquet")
    store = data_asset_stores.LocalAssetStore(settings.data_assets_dir())
    register_data.register(existing, NAME, store)
    before = store_files(settings.data_assets_dir())
    bad = tmp_path / "no-ph3.parquet"
    sample_frame.drop(columns="ph3").to_parquet(bad)

    result = run(repo_root, bad)

    assert result.status == "Failed"
    assert result.failed_step == "validate"
    assert result.steps["ingest"].status == "Completed"
    assert result.steps["profile"].status == "Skipped"
    assert result.steps["register"].status == "Skipped"
    assert "Validation failed: 1 of 8 checks failed (columns_present)" in result.error
    assert "Required column(s) ['ph3'] not found" in result.error
    assert store_files(settings.data_assets_dir()) == before
