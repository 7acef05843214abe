"""Connect to an Azure ML workspace: ``MLClient`` with ``DefaultAzureCredential``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

WORKSPACE_ENV = (
    "AZUREML_SUBSCRIPTION_ID",
    "AZUREML_RESOURCE_GROUP",
    "AZUREML_WORKSPACE_NAME",
)


class WorkspaceError(RuntimeError):
    """A workspace operation that failed; the message names the next step."""


def connect(config: Path | None = None):
    """Return an ``MLClient`` for the workspace named by env vars or ``config.json``.

    The three ``AZUREML_*`` variables win when all are set. Otherwise
    ``MLClient.from_config`` reads ``config`` or looks for ``config.json`` (or
    ``.azureml/config.json``) in the current folder and its parents, the file the
    Azure portal offers for download on the workspace's overview page.
    """
    from azure.ai.ml import MLClient
    from azure.ai.ml.exceptions import ValidationException
    from azure.identity import DefaultAzureCredential

    values = {name: os.environ.get(name, "") for name in WORKSPACE_ENV}
    set_names = [name for name, value in values.items() if value]
    if set_names and len(set_names) < len(WORKSPACE_ENV):
        missing = [name for name in WORKSPACE_ENV if name not in set_names]
        raise WorkspaceError(
            f"{', '.join(set_names)} set but {', '.join(missing)} not; set all three, "
            "or unset them and use config.json"
        )
    credential = DefaultAzureCredential()
    if set_names:
        logger.info("workspace %s from environment variables", values[WORKSPACE_ENV[2]])
        return MLClient(
            credential,
            subscription_id=values["AZUREML_SUBSCRIPTION_ID"],
            resource_group_name=values["AZUREML_RESOURCE_GROUP"],
            workspace_name=values["AZUREML_WORKSPACE_NAME"],
        )
    try:
        return MLClient.from_config(credential, path=str(config) if config else None)
    except ValidationException as exc:
        where = config or Path.cwd()
        raise WorkspaceError(
            f"no workspace configured: no config.json at or above {where}, and "
            f"{', '.join(WORKSPACE_ENV)} are not set. Download config.json from the "
            "workspace's overview page in the Azure portal into this folder, or set "
            "the three variables"
        ) from exc
