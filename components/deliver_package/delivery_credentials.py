"""Find connection strings: environment variable, Azure Key Vault, or the local stack.

Each secret is looked up in this order:

1. its environment variable (e.g. ``AZURE_STORAGE_CONNECTION_STRING``);
2. a secret in the Key Vault named by ``PLANT2EDGE_KEY_VAULT_URL``, read with
   ``DefaultAzureCredential`` (the managed identity of an Azure ML compute);
3. ``stack.json`` of the local stack (``plant2edge stack start``) in
   ``$PLANT2EDGE_LOCALSTACK_DIR`` or ``$PLANT2EDGE_HOME/localstack``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

KEY_VAULT_URL_ENV = "PLANT2EDGE_KEY_VAULT_URL"
LOCALSTACK_DIR_ENV = "PLANT2EDGE_LOCALSTACK_DIR"
HOME_ENV = "PLANT2EDGE_HOME"
STACK_FILE = "stack.json"


class CredentialError(RuntimeError):
    """A required connection string or key was not found anywhere."""


@dataclass(frozen=True)
class Secret:
    description: str
    env: str
    vault_name: str


STORAGE = Secret(
    "blob storage connection string (with AccountKey, to sign SAS URLs)",
    "AZURE_STORAGE_CONNECTION_STRING",
    "storage-connection-string",
)
IOTHUB = Secret(
    "IoT Hub service connection string (policy with 'service connect')",
    "IOTHUB_CONNECTION_STRING",
    "iothub-connection-string",
)
EVENTHUB = Secret(
    "IoT Hub Event Hub-compatible endpoint connection string",
    "IOTHUB_EVENTHUB_CONNECTION_STRING",
    "iothub-eventhub-connection-string",
)
CONSUMER_GROUP_ENV = "IOTHUB_EVENTHUB_CONSUMER_GROUP"


def localstack_dir() -> Path:
    if os.environ.get(LOCALSTACK_DIR_ENV):
        return Path(os.environ[LOCALSTACK_DIR_ENV])
    home = Path(os.environ.get(HOME_ENV) or Path.cwd() / ".plant2edge")
    return home / "localstack"


def local_stack() -> dict | None:
    """Return the local stack's ``stack.json`` content, or None if none runs."""
    path = localstack_dir() / STACK_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise CredentialError(
            f"{path} is not valid JSON ({exc}); restart the local stack with "
            "'plant2edge stack stop' and 'plant2edge stack start'."
        ) from exc


def read_key_vault_secret(vault_url: str, name: str) -> str:
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    client = SecretClient(vault_url=vault_url, credential=DefaultAzureCredential())
    return client.get_secret(name).value


def resolve(
    secret: Secret,
    *,
    local_value: Callable[[dict], str | None] | None = None,
    read_vault: Callable[[str, str], str] = read_key_vault_secret,
) -> str:
    """Return the value of ``secret`` from the first source that has it."""
    value = os.environ.get(secret.env)
    if value:
        logger.info(
            "Using the %s from environment variable %s", secret.description, secret.env
        )
        return value
    vault_url = os.environ.get(KEY_VAULT_URL_ENV)
    if vault_url:
        try:
            value = read_vault(vault_url, secret.vault_name)
        except Exception as exc:
            raise CredentialError(
                f"Reading secret {secret.vault_name!r} from Key Vault {vault_url} "
                f"failed ({type(exc).__name__}: {exc}). Grant this job's identity "
                "the 'Key Vault Secrets User' role or set "
                f"{secret.env}."
            ) from exc
        logger.info(
            "Using the %s from Key Vault secret %s",
            secret.description,
            secret.vault_name,
        )
        return value
    stack = local_stack()
    if stack is not None and local_value is not None:
        value = local_value(stack)
        if value:
            logger.info(
                "Using the %s of the local stack in %s",
                secret.description,
                localstack_dir(),
            )
            return value
    raise CredentialError(
        f"No {secret.description} found. Set {secret.env}, or set "
        f"{KEY_VAULT_URL_ENV} to a Key Vault holding the secret "
        f"{secret.vault_name!r}, or start the local stack with "
        f"'plant2edge stack start' (looked in {localstack_dir() / STACK_FILE})."
    )


def storage_connection_string() -> str:
    return resolve(
        STORAGE, local_value=lambda stack: stack["blob"]["connection_string"]
    )


def mqtt_settings() -> dict:
    """Return host, port and certificate paths of the local broker's cloud identity."""
    stack = local_stack()
    if stack is None:
        raise CredentialError(
            "transport 'mqtt' needs the local stack, but "
            f"{localstack_dir() / STACK_FILE} does not exist. Start it with "
            "'plant2edge stack start', or use transport 'iothub' for a real hub."
        )
    return stack["mqtt"]


def iothub_connection_strings() -> tuple[str, str, str]:
    """Return the service and Event Hub-compatible connection strings and consumer group."""
    service = resolve(IOTHUB)
    events = resolve(EVENTHUB)
    return service, events, os.environ.get(CONSUMER_GROUP_ENV) or "$Default"
