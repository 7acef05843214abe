"""Each check of `plant2edge validate` on a fixture that breaks exactly one rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plant2edge.validate import validate

FIXTURES = Path(__file__).parent / "fixtures"

CLEAN = [
    "components/good.yaml",
    "pipelines/good.yaml",
    "environments/good.yaml",
    "schedules/good.yaml",
]

# fixture, line of the finding, pattern the message must match
CASES = [
    # components
    (
        "components/unknown_key.yaml",
        7,
        r"unknown key 'is_determinstic'.*Did you mean 'is_deterministic'",
    ),
    (
        "components/version_float.yaml",
        3,
        r"version 1\.10 is unquoted.*registers version '1\.1'",
    ),
    ("components/no_display_name.yaml", 2, r"component has no display_name"),
    ("components/no_description.yaml", 32, r"input 'flag' has no description"),
    (
        "components/optional_unwrapped.yaml",
        48,
        r"optional input 'count' is used in command outside \$\[\[\.\.\.\]\]",
    ),
    (
        "components/undeclared_input_ref.yaml",
        50,
        r"command uses \$\{\{inputs\.extra\}\}, but inputs declares no 'extra'",
    ),
    (
        "components/undeclared_output_ref.yaml",
        51,
        r"command uses \$\{\{outputs\.log\}\}, but outputs declares no 'log'",
    ),
    (
        "components/unused_input.yaml",
        32,
        r"input 'flag' is declared but the command never uses it",
    ),
    ("components/no_side_effect_tag.yaml", 2, r"component has no tags\.side_effect"),
    (
        "components/side_effect_unknown.yaml",
        8,
        r"tags\.side_effect is 'writes_files'; accepted: none, external_data",
    ),
    (
        "components/side_effect_deterministic_absent.yaml",
        8,
        r"is_deterministic is absent \(true\) although tags\.side_effect is 'register'",
    ),
    (
        "components/side_effect_deterministic_true.yaml",
        7,
        r"is_deterministic is true although tags\.side_effect is 'register'",
    ),
    (
        "components/image_latest.yaml",
        42,
        r"image mcr\.microsoft\.com/azureml/openmpi5\.0-ubuntu24\.04:latest is not pinned",
    ),
    (
        "components/sdk_bad_output_type.yaml",
        37,
        r"azure-ai-ml rejects it: outputs\.result: .*'uri_foldr'",
    ),
    # pipelines
    (
        "pipelines/undeclared_step_input.yaml",
        22,
        r"step 'first' sets input 'cuont', which component fixture_step does not declare.*Did you mean 'count'",
    ),
    (
        "pipelines/undeclared_step_output.yaml",
        32,
        r"step 'second' sets output 'report', which component fixture_step does not declare",
    ),
    (
        "pipelines/enum_value.yaml",
        28,
        r"step 'second' input 'mode' = 'medium' is not one of the accepted values: fast, slow",
    ),
    (
        "pipelines/not_a_number.yaml",
        28,
        r"step 'second' input 'threshold' = 'high' is not a number",
    ),
    (
        "pipelines/above_maximum.yaml",
        22,
        r"step 'first' input 'count' = 50 is above the maximum 10",
    ),
    (
        "pipelines/not_a_boolean.yaml",
        29,
        r"step 'second' input 'flag' = 'maybe' is not a boolean",
    ),
    (
        "pipelines/pipeline_input_value.yaml",
        11,
        r"pipeline input 'mode' = 'medium' is not one of the accepted values.*bound to step 'first' input 'mode'",
    ),
    (
        "pipelines/missing_step.yaml",
        27,
        r"refers to step 'frist', which the pipeline does not have\. Did you mean 'first'",
    ),
    (
        "pipelines/missing_step_output.yaml",
        27,
        r"refers to output 'results' of step 'first', which its component does not declare\. Did you mean 'result'",
    ),
    (
        "pipelines/missing_pipeline_input.yaml",
        28,
        r"\$\{\{parent\.inputs\.speed\}\} refers to a pipeline input that is not declared",
    ),
    (
        "pipelines/unknown_binding.yaml",
        28,
        r"\$\{\{parent\.settings\.mode\}\} is not a binding Azure ML resolves",
    ),
    (
        "pipelines/unused_pipeline_input.yaml",
        12,
        r"pipeline input 'extra' is not bound to any step",
    ),
    (
        "pipelines/cycle.yaml",
        17,
        r"steps depend on each other in a cycle: first -> second -> first",
    ),
    (
        "pipelines/missing_component.yaml",
        18,
        r"step 'first': component file \.\./components/gone\.yaml not found",
    ),
    ("pipelines/invalid_yaml.yaml", 12, r"invalid YAML: expected ',' or '\]'"),
    # environments and schedules
    ("environments/version_float.yaml", 3, r"version 1\.10 is unquoted"),
    ("environments/image_latest.yaml", 5, r"image .*:latest is not pinned"),
    (
        "schedules/missing_job.yaml",
        9,
        r"azure-ai-ml rejects it: create_job: .*No such file or directory",
    ),
]


@pytest.mark.parametrize("fixture", CLEAN)
def test_validate_accepts_clean_fixture(fixture):
    report = validate([FIXTURES / fixture])

    assert [f.format() for f in report.findings] == []
    assert report.files == [FIXTURES / fixture]


@pytest.mark.parametrize(
    ("fixture", "line", "pattern"), CASES, ids=[case[0] for case in CASES]
)
def test_validate_reports_exactly_one_finding(fixture, line, pattern):
    path = FIXTURES / fixture

    findings = validate([path]).findings

    assert len(findings) == 1, "\n".join(f.format() for f in findings)
    assert findings[0].path == path
    assert findings[0].line == line
    assert re.search(pattern, findings[0].message), findings[0].message
    assert findings[0].fix


def test_validate_fix_names_the_accepted_values():
    [finding] = validate([FIXTURES / "pipelines/enum_value.yaml"]).findings

    assert finding.fix == "use one of: fast, slow"


def test_validate_fix_quotes_float_version():
    [finding] = validate([FIXTURES / "components/version_float.yaml"]).findings

    assert finding.fix == 'quote it: version: "1.10"'


def test_validate_suggests_side_effect_from_name(tmp_path):
    source = (FIXTURES / "components/no_side_effect_tag.yaml").read_text()
    spec = tmp_path / "components" / "ingest.yaml"
    spec.parent.mkdir()
    spec.write_text(
        source.replace("name: fixture_step", "name: fixture_ingest_step")
        .replace("code: ../code", f"code: {FIXTURES / 'code'}")
        .replace(
            "conda_file: ../code/conda.yaml",
            f"conda_file: {FIXTURES / 'code/conda.yaml'}",
        )
    )

    [finding] = validate([spec]).findings

    assert "add tags: {side_effect: external_data}" in finding.fix


def test_validate_prefers_own_finding_over_sdk_message():
    # azure-ai-ml also rejects the undeclared ${{inputs.extra}}, with the field
    # "command" and no line; only the finding with the exact line remains.
    [finding] = validate([FIXTURES / "components/undeclared_input_ref.yaml"]).findings

    assert finding.source == "plant2edge"
    assert finding.field == "command"


def test_validate_reports_cycle_once():
    findings = validate([FIXTURES / "pipelines/cycle.yaml"]).findings

    assert [f.message.count("cycle") for f in findings] == [1]
