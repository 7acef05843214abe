"""`plant2edge validate` on the command line: output format and exit code."""

from __future__ import annotations

import os
from pathlib import Path

from plant2edge.validate import main

FIXTURES = Path(__file__).parent / "fixtures"


def test_validate_cli_prints_finding_and_fails(capsys, monkeypatch):
    monkeypatch.chdir(FIXTURES)

    code = main(["pipelines/enum_value.yaml", "components/good.yaml"])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines == [
        (
            "pipelines/enum_value.yaml:28: step 'second' input 'mode' = 'medium' is not "
            "one of the accepted values: fast, slow (string input of fixture_step) "
            "(fix: use one of: fast, slow)"
        ),
        "2 files checked, 1 findings",
    ]


def test_validate_cli_passes_clean_files(capsys):
    files = [str(FIXTURES / kind / "good.yaml") for kind in ("components", "pipelines")]

    code = main(files)

    assert code == 0
    assert capsys.readouterr().out == "2 files checked, 0 findings\n"


def test_validate_cli_reports_missing_file(capsys, tmp_path):
    code = main([str(tmp_path / "absent.yaml")])

    out = capsys.readouterr().out
    assert code == 1
    assert f"{tmp_path / 'absent.yaml'}:1: file not found" in out


def test_validate_cli_scans_repository_layout(capsys, tmp_path):
    # A folder with components/ is read as a repository: component.yaml files,
    # pipelines/*.yaml, pipelines/schedules/*.yaml and environments/*.yaml.
    stage = tmp_path / "components" / "step"
    stage.mkdir(parents=True)
    for name in os.listdir(FIXTURES / "code"):
        (stage / name).write_bytes((FIXTURES / "code" / name).read_bytes())
    spec = (FIXTURES / "components" / "version_float.yaml").read_text()
    (stage / "component.yaml").write_text(
        spec.replace("../code/conda.yaml", "conda.yaml").replace("../code", ".")
    )

    code = main([str(tmp_path)])

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].endswith(
        "component.yaml:3: version 1.10 is unquoted, so YAML "
        "reads it as a number and azure-ai-ml registers version "
        "'1.1' (fix: quote it: version: \"1.10\")"
    )
    assert out[-1] == "1 files checked, 1 findings"
