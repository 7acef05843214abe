"""Calls to azure-ai-ml's MLClient, mocked at the SDK boundary (no workspace here)."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from azure.ai.ml.operations import (
    ComponentOperations,
    EnvironmentOperations,
    JobOperations,
)
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from plant2edge import workspace
from plant2edge.workspace_assets import FINGERPRINT_TAG, load_assets, register
from plant2edge.workspace_client import WORKSPACE_ENV, WorkspaceError, connect
from plant2edge.workspace_submit import build_job, submit

REPO = Path(__file__).parent / "fixtures" / "repo"


@pytest.fixture
def assets():
    return load_assets(REPO)


def missing(*args, **kwargs):
    raise ResourceNotFoundError("not found")


def test_register_creates_missing_versions(assets):
    client = mock.MagicMock()
    client.environments.get.side_effect = missing
    client.components.get.side_effect = missing

    outcomes = register(client, assets)

    assert [o.line() for o in outcomes] == [
        "created   environment plant2edge-clean-step:2",
        "created   component plant2edge_clean_step:3",
    ]
    assert client.mock_calls == [
        mock.call.environments.get(name="plant2edge-clean-step", version="2"),
        mock.call.environments.create_or_update(assets[0].entity),
        mock.call.components.get(name="plant2edge_clean_step", version="3"),
        mock.call.components.create_or_update(assets[1].entity),
    ]


def test_register_sends_fingerprint_tag(assets):
    client = mock.MagicMock()
    client.components.get.side_effect = missing

    register(client, assets[1:])

    [sent] = client.components.create_or_update.call_args.args
    assert sent.tags == {"side_effect": "none", FINGERPRINT_TAG: assets[1].fingerprint}


def test_register_skips_unchanged_versions(assets):
    client = mock.MagicMock()
    client.environments.get.return_value = SimpleNamespace(
        image=assets[0].entity.image, conda_file=dict(assets[0].entity.conda_file)
    )
    client.components.get.return_value = SimpleNamespace(
        tags={FINGERPRINT_TAG: assets[1].fingerprint}
    )

    outcomes = register(client, assets)

    assert [o.status for o in outcomes] == ["unchanged", "unchanged"]
    client.environments.create_or_update.assert_not_called()
    client.components.create_or_update.assert_not_called()


def test_register_rejects_changed_content_with_same_version(assets):
    client = mock.MagicMock()
    client.environments.get.return_value = SimpleNamespace(
        image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
        conda_file=dict(assets[0].entity.conda_file),
    )
    client.components.get.return_value = SimpleNamespace(
        tags={FINGERPRINT_TAG: "0" * 64}
    )

    outcomes = register(client, assets)

    assert [o.status for o in outcomes] == ["error", "error"]
    assert outcomes[0].differences == ["image"]
    assert outcomes[0].detail.startswith(
        "version 2 exists in the workspace with different content (image)"
    )
    assert 'set version: "3" in' in outcomes[0].detail
    assert 'set version: "4" in' in outcomes[1].detail
    client.environments.create_or_update.assert_not_called()
    client.components.create_or_update.assert_not_called()


def test_register_compares_spec_of_component_without_fingerprint(assets):
    local = assets[1].entity
    remote = SimpleNamespace(
        tags={},
        display_name=local.display_name,
        description=local.description,
        command=local.command + " --verbose",
        is_deterministic=local.is_deterministic,
        inputs=local.inputs,
        outputs=local.outputs,
        environment=f"azureml:CliV2AnonymousEnvironment:{local.environment.version}",
    )
    client = mock.MagicMock()
    client.components.get.return_value = remote

    [outcome] = register(client, assets[1:])

    assert outcome.status == "error"
    assert outcome.differences == ["command"]


def test_register_reports_service_error_and_continues(assets):
    client = mock.MagicMock()
    client.environments.get.side_effect = missing
    client.environments.create_or_update.side_effect = HttpResponseError(
        message="image not found"
    )
    client.components.get.side_effect = missing

    outcomes = register(client, assets)

    assert [o.status for o in outcomes] == ["error", "created"]
    assert outcomes[0].detail == "the workspace rejected the request: image not found"


def test_register_cli_prints_outcomes_and_fails_on_error(monkeypatch, capsys, assets):
    client = mock.MagicMock()
    client.environments.get.side_effect = missing
    client.components.get.return_value = SimpleNamespace(
        tags={FINGERPRINT_TAG: "f" * 64}
    )
    monkeypatch.setattr(workspace, "connect", lambda config: client)

    code = workspace.main(["register", "--repo", str(REPO)])

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0] == "created   environment plant2edge-clean-step:2"
    assert out[1].startswith(
        "error     component plant2edge_clean_step:3: version 3 exists"
    )
    assert out[2] == "1 created, 0 unchanged, 1 error"


def test_submit_creates_job_and_streams(capsys):
    job = build_job(REPO / "pipelines" / "demo.yaml", {"inputs.window_size": "50"})
    client = mock.MagicMock()
    client.jobs.create_or_update.return_value = SimpleNamespace(
        name="brave_kiwi_1", studio_url="https://ml.azure.com/runs/brave_kiwi_1"
    )

    submit(client, job, wait=True)

    assert client.mock_calls == [
        mock.call.jobs.create_or_update(job, experiment_name="demo-experiment"),
        mock.call.jobs.stream("brave_kiwi_1"),
    ]
    assert capsys.readouterr().out.splitlines() == [
        "submitted brave_kiwi_1 to experiment demo-experiment",
        "studio: https://ml.azure.com/runs/brave_kiwi_1",
    ]


def test_mocked_calls_match_sdk_signatures(assets):
    # The mocks above accept any call; bind the same arguments to the real methods
    # of azure-ai-ml 1.35 so that a renamed parameter fails here.
    calls = [
        (EnvironmentOperations.get, {"name": "n", "version": "1"}),
        (EnvironmentOperations.create_or_update, {"environment": assets[0].entity}),
        (ComponentOperations.get, {"name": "n", "version": "1"}),
        (ComponentOperations.create_or_update, {"component": assets[1].entity}),
        (JobOperations.create_or_update, {"job": object(), "experiment_name": "e"}),
        (JobOperations.stream, {"name": "n"}),
    ]
    for method, arguments in calls:
        inspect.signature(method).bind(None, **arguments)


def test_connect_uses_environment_variables(monkeypatch):
    values = ["sub-id", "rg-plant", "ws-plant"]
    for name, value in zip(WORKSPACE_ENV, values, strict=True):
        monkeypatch.setenv(name, value)
    credential = object()
    client_class = mock.MagicMock()
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda: credential)
    monkeypatch.setattr("azure.ai.ml.MLClient", client_class)

    connect()

    client_class.assert_called_once_with(
        credential,
        subscription_id="sub-id",
        resource_group_name="rg-plant",
        workspace_name="ws-plant",
    )


def test_connect_reads_config_file(monkeypatch, tmp_path):
    for name in WORKSPACE_ENV:
        monkeypatch.delenv(name, raising=False)
    client_class = mock.MagicMock()
    monkeypatch.setattr("azure.identity.DefaultAzureCredential", lambda: "credential")
    monkeypatch.setattr("azure.ai.ml.MLClient", client_class)

    connect(tmp_path / "config.json")

    client_class.from_config.assert_called_once_with(
        "credential", path=str(tmp_path / "config.json")
    )


def test_connect_rejects_partial_environment(monkeypatch):
    monkeypatch.setenv("AZUREML_WORKSPACE_NAME", "ws-plant")
    monkeypatch.delenv("AZUREML_SUBSCRIPTION_ID", raising=False)
    monkeypatch.delenv("AZUREML_RESOURCE_GROUP", raising=False)

    with pytest.raises(
        WorkspaceError,
        match="AZUREML_WORKSPACE_NAME set but AZUREML_SUBSCRIPTION_ID, "
        "AZUREML_RESOURCE_GROUP not",
    ):
        connect()


def test_connect_without_workspace_names_both_options(monkeypatch, tmp_path):
    for name in WORKSPACE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(
        WorkspaceError, match=r"no config\.json at or above .* are not set"
    ):
        connect()
