"""The repository's own components, pipelines, schedules and environments pass validate."""

from __future__ import annotations

from plant2edge.validate import validate


def test_repository_yaml_has_no_findings(repo_root):
    report = validate([repo_root])

    listing = "\n".join(finding.format(repo_root) for finding in report.findings)
    assert report.files, "no component, pipeline or environment YAML found"
    assert report.findings == [], f"{report.summary()}:\n{listing}"
