"""Registration and submission against a live Azure ML workspace.

Skipped unless AZUREML_WORKSPACE_NAME is set (with AZUREML_SUBSCRIPTION_ID and
AZUREML_RESOURCE_GROUP), and a credential that DefaultAzureCredential finds.
"""

from __future__ import annotations

import os

import pytest

from plant2edge.workspace_assets import load_assets, register
from plant2edge.workspace_client import connect
from plant2edge.workspace_submit import build_job, resolve_pipeline

pytestmark = [
    pytest.mark.azure,
    pytest.mark.skipif(
        not os.environ.get("AZUREML_WORKSPACE_NAME"),
        reason="needs a live workspace: set AZUREML_WORKSPACE_NAME",
    ),
]


def test_register_twice_leaves_everything_unchanged(repo_root):
    client = connect()
    assets = load_assets(repo_root)

    first = register(client, assets)
    second = register(client, assets)

    assert [o.line() for o in first if o.status == "error"] == []
    assert {o.status for o in second} == {"unchanged"}


def test_submit_data_asset_pipeline_returns_studio_url(repo_root):
    client = connect()
    job = build_job(resolve_pipeline(repo_root, "data_asset"), {}, "plant2edge-tests")

    created = client.jobs.create_or_update(job, experiment_name=job.experiment_name)

    assert created.studio_url.startswith("https://ml.azure.com/")
    client.jobs.begin_cancel(created.name)
