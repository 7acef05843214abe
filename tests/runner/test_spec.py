"""Checks the runner makes before any step runs; azure-ai-ml misses most of them."""

from __future__ import annotations

import pytest

from plant2edge.local.spec import load_pipeline
from plant2edge.runner import PipelineSpecError, run_pipeline

WRITE_STEP = """\
  write:
    type: command
    component: {components}/write_text/component.yaml
    inputs:
      text: hello
"""


def test_load_orders_steps_by_bindings(pipelines_dir):
    spec = load_pipeline(pipelines_dir / "chain.yaml")

    assert list(spec.steps) == ["write", "shout", "report"]
    assert spec.experiment_name == "runner-fixture-chain"


def test_experiment_name_defaults_to_stem(pipelines_dir):
    spec = load_pipeline(pipelines_dir / "options.yaml")

    assert spec.experiment_name == "options"


def test_load_resolves_code_folder(pipelines_dir):
    spec = load_pipeline(pipelines_dir / "chain.yaml")

    code_dir = spec.steps["report"].component.code_dir
    assert code_dir == (pipelines_dir.parent / "components" / "echo_args").resolve()


def test_undeclared_node_input_rejected(write_pipeline, p2e_home):
    path = write_pipeline("jobs:\n" + WRITE_STEP + "      txet: misspelt\n")

    with pytest.raises(
        PipelineSpecError,
        match=r"Step 'write' sets input 'txet', which its component does not "
        r"declare. Declared inputs: text\.",
    ):
        run_pipeline(path)
    assert not (p2e_home / "runs").exists()


def test_undeclared_node_output_rejected(write_pipeline):
    path = write_pipeline(
        "jobs:\n" + WRITE_STEP + "    outputs:\n      txt_file: ${{parent.outputs.x}}\n"
    )

    with pytest.raises(
        PipelineSpecError, match=r"output 'txt_file'.*Declared outputs: text_file, "
    ):
        load_pipeline(path)


def test_missing_required_input_rejected(write_pipeline):
    path = write_pipeline(
        "jobs:\n"
        "  shout:\n"
        "    type: command\n"
        "    component: {components}/upper/component.yaml\n"
    )

    with pytest.raises(
        PipelineSpecError, match=r"Step 'shout' is missing required input 'source'"
    ):
        load_pipeline(path)


def test_cycle_rejected(write_pipeline):
    path = write_pipeline(
        "jobs:\n"
        "  a:\n"
        "    type: command\n"
        "    component: {components}/upper/component.yaml\n"
        "    inputs:\n"
        "      source: ${{parent.jobs.b.outputs.result}}\n"
        "  b:\n"
        "    type: command\n"
        "    component: {components}/upper/component.yaml\n"
        "    inputs:\n"
        "      source: ${{parent.jobs.a.outputs.result}}\n"
    )

    with pytest.raises(
        PipelineSpecError, match=r"The steps form a cycle: (a -> b -> a|b -> a -> b)"
    ):
        load_pipeline(path)


def test_binding_to_missing_step_rejected(write_pipeline):
    path = write_pipeline(
        "jobs:\n"
        "  shout:\n"
        "    type: command\n"
        "    component: {components}/upper/component.yaml\n"
        "    inputs:\n"
        "      source: ${{parent.jobs.wirte.outputs.text_file}}\n"
    )

    with pytest.raises(
        PipelineSpecError,
        match=r"Step 'shout' input 'source' is bound to "
        r"'\$\{\{parent.jobs.wirte.outputs.text_file\}\}', but the pipeline has no "
        r"step 'wirte'. Steps: shout",
    ):
        load_pipeline(path)


def test_binding_to_missing_output_rejected(write_pipeline):
    path = write_pipeline(
        "jobs:\n" + WRITE_STEP + "  shout:\n"
        "    type: command\n"
        "    component: {components}/upper/component.yaml\n"
        "    inputs:\n"
        "      source: ${{parent.jobs.write.outputs.text}}\n"
    )

    with pytest.raises(
        PipelineSpecError,
        match=r"step 'write' has no output 'text'. Its outputs: text_file, text_folder",
    ):
        load_pipeline(path)


def test_binding_to_missing_input_rejected(write_pipeline):
    path = write_pipeline(
        "inputs:\n  greeting: hi\n"
        "jobs:\n"
        "  write:\n"
        "    type: command\n"
        "    component: {components}/write_text/component.yaml\n"
        "    inputs:\n"
        "      text: ${{parent.inputs.greting}}\n"
    )

    with pytest.raises(
        PipelineSpecError,
        match=r"the pipeline has no input 'greting'. Pipeline inputs: greeting",
    ):
        load_pipeline(path)


def test_partial_binding_rejected(write_pipeline):
    path = write_pipeline(
        "inputs:\n  greeting: hi\n"
        "jobs:\n"
        "  write:\n"
        "    type: command\n"
        "    component: {components}/write_text/component.yaml\n"
        "    inputs:\n"
        "      text: say ${{parent.inputs.greeting}}\n"
    )

    with pytest.raises(PipelineSpecError, match=r"invalid binding 'say \$\{\{parent"):
        load_pipeline(path)


def test_non_integer_value_rejected(pipelines_dir):
    with pytest.raises(
        PipelineSpecError,
        match=r"Step 'full' input 'count' must be an integer, got 'many'",
    ):
        load_pipeline(
            pipelines_dir / "options.yaml", {"jobs.full.inputs.count": "many"}
        )


def test_value_outside_enum_rejected(pipelines_dir):
    with pytest.raises(
        PipelineSpecError,
        match=r"input 'mode' is 'medium', which is not one of: fast, slow",
    ):
        load_pipeline(
            pipelines_dir / "options.yaml", {"jobs.full.inputs.mode": "medium"}
        )


def test_non_boolean_value_rejected(pipelines_dir):
    with pytest.raises(
        PipelineSpecError, match=r"'verbose' is a boolean, got 'yes please'"
    ):
        load_pipeline(pipelines_dir / "options.yaml", {"inputs.verbose": "yes please"})


def test_override_unknown_input_rejected(pipelines_dir):
    with pytest.raises(
        PipelineSpecError,
        match=r"pipeline input 'mesage'.*Pipeline inputs: message, verbose, ratio",
    ):
        load_pipeline(pipelines_dir / "options.yaml", {"inputs.mesage": "x"})


def test_override_unknown_step_rejected(pipelines_dir):
    with pytest.raises(PipelineSpecError, match=r"step 'ful'.*Steps: full, bare"):
        load_pipeline(pipelines_dir / "options.yaml", {"jobs.ful.inputs.count": "1"})


def test_override_undeclared_input_rejected(pipelines_dir):
    with pytest.raises(
        PipelineSpecError,
        match=r"--set jobs.full.inputs.cnt: Step 'full' sets input 'cnt'.*"
        r"Declared inputs: message, count, ratio",
    ):
        load_pipeline(pipelines_dir / "options.yaml", {"jobs.full.inputs.cnt": "1"})


def test_override_unsupported_key_rejected(pipelines_dir):
    with pytest.raises(PipelineSpecError, match=r"Unsupported override 'settings.x'"):
        load_pipeline(pipelines_dir / "options.yaml", {"settings.x": "1"})


def test_unbound_pipeline_output_rejected(write_pipeline):
    path = write_pipeline(
        "outputs:\n  result:\n    type: uri_folder\n    name: result\n"
        "jobs:\n" + WRITE_STEP
    )

    with pytest.raises(
        PipelineSpecError, match=r"Pipeline output 'result' is not bound by any step"
    ):
        load_pipeline(path)


def test_registered_component_rejected(write_pipeline):
    path = write_pipeline(
        "jobs:\n"
        "  write:\n"
        "    type: command\n"
        "    component: azureml:plant2edge_write:1\n"
    )

    with pytest.raises(PipelineSpecError, match=r"needs a path to a component YAML"):
        load_pipeline(path)


def test_missing_pipeline_file_rejected(tmp_path):
    with pytest.raises(PipelineSpecError, match=r"nope.yaml not found"):
        load_pipeline(tmp_path / "nope.yaml")
