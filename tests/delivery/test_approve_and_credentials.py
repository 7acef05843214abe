"""plant2edge approve, and where the delivery step finds its connection strings."""

from __future__ import annotations

import json
from unittest import mock

import azure.identity
import azure.keyvault.secrets
import pytest
from delivery_credentials import (
    STORAGE,
    CredentialError,
    iothub_connection_strings,
    resolve,
    storage_connection_string,
)
from delivery_helpers import PACKAGE_NAME

from plant2edge.approve import main as approve_main


def test_approve_sets_tag_with_approver(registry, capsys):
    registry.register()

    code = approve_main(
        [
            "--name",
            PACKAGE_NAME,
            "--version",
            "1",
            "--environment",
            "production",
            "--by",
            "Ada",
        ]
    )

    assert code == 0
    record = json.loads(registry.tags(PACKAGE_NAME, "1")["approval.production"])
    assert record["approved_by"] == "Ada"
    assert record["approved_at"].endswith("+00:00")
    assert (
        "Approved state-identifier_edge version 1 for production"
        in capsys.readouterr().out
    )


def test_approve_latest_resolves_highest_version(registry):
    registry.register()
    registry.register()

    approve_main(
        ["--name", PACKAGE_NAME, "--version", "latest", "--environment", "dev"]
    )

    assert "approval.dev" in registry.tags(PACKAGE_NAME, "2")
    assert "approval.dev" not in registry.tags(PACKAGE_NAME, "1")


def test_approve_rejects_missing_version(registry, capsys):
    registry.register()

    code = approve_main(
        ["--name", PACKAGE_NAME, "--version", "4", "--environment", "dev"]
    )

    assert code == 2
    assert "has no version '4'. Available versions: 1." in capsys.readouterr().err


def test_approve_rejects_unknown_package(registry, capsys):
    code = approve_main(
        ["--name", "pump_edge", "--version", "1", "--environment", "dev"]
    )

    assert code == 2
    assert "No registered model named 'pump_edge'" in capsys.readouterr().err


def test_approve_rejects_invalid_environment(registry, capsys):
    registry.register()

    code = approve_main(
        ["--name", PACKAGE_NAME, "--version", "1", "--environment", "prod/eu"]
    )

    assert code == 2
    assert "--environment 'prod/eu' is invalid" in capsys.readouterr().err


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (
        "AZURE_STORAGE_CONNECTION_STRING",
        "PLANT2EDGE_KEY_VAULT_URL",
        "IOTHUB_CONNECTION_STRING",
        "IOTHUB_EVENTHUB_CONNECTION_STRING",
        "IOTHUB_EVENTHUB_CONSUMER_GROUP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLANT2EDGE_LOCALSTACK_DIR", str(tmp_path / "no-stack"))
    return monkeypatch


def test_credentials_prefer_environment_variable(clean_env):
    clean_env.setenv("AZURE_STORAGE_CONNECTION_STRING", "from-env")
    clean_env.setenv("PLANT2EDGE_KEY_VAULT_URL", "https://vault.example")
    read_vault = mock.Mock()

    assert resolve(STORAGE, read_vault=read_vault) == "from-env"
    read_vault.assert_not_called()


def test_credentials_read_key_vault_secret(clean_env, monkeypatch):
    clean_env.setenv("PLANT2EDGE_KEY_VAULT_URL", "https://plant-kv.vault.azure.net/")
    secret_client = mock.MagicMock(name="SecretClient")
    secret_client.return_value.get_secret.return_value = mock.Mock(value="from-vault")
    credential = mock.sentinel.credential
    monkeypatch.setattr(azure.keyvault.secrets, "SecretClient", secret_client)
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda: credential)

    assert storage_connection_string() == "from-vault"
    secret_client.assert_called_once_with(
        vault_url="https://plant-kv.vault.azure.net/", credential=credential
    )
    secret_client.return_value.get_secret.assert_called_once_with(
        "storage-connection-string"
    )


def test_credentials_key_vault_failure_names_role(clean_env):
    clean_env.setenv("PLANT2EDGE_KEY_VAULT_URL", "https://plant-kv.vault.azure.net/")

    def forbidden(url, name):
        raise PermissionError("403 Forbidden")

    with pytest.raises(CredentialError, match="'Key Vault Secrets User' role"):
        resolve(STORAGE, read_vault=forbidden)


def test_credentials_fall_back_to_local_stack(clean_env, tmp_path):
    stack_dir = tmp_path / "stack"
    stack_dir.mkdir()
    (stack_dir / "stack.json").write_text(
        json.dumps({"blob": {"connection_string": "from-stack"}, "mqtt": {}})
    )
    clean_env.setenv("PLANT2EDGE_LOCALSTACK_DIR", str(stack_dir))

    assert storage_connection_string() == "from-stack"


def test_credentials_missing_everywhere_lists_options(clean_env):
    with pytest.raises(CredentialError) as info:
        storage_connection_string()

    message = str(info.value)
    assert "Set AZURE_STORAGE_CONNECTION_STRING" in message
    assert "PLANT2EDGE_KEY_VAULT_URL" in message
    assert "'storage-connection-string'" in message
    assert "plant2edge stack start" in message


def test_iothub_credentials_have_no_local_fallback(clean_env):
    clean_env.setenv("IOTHUB_CONNECTION_STRING", "service")

    with pytest.raises(CredentialError, match="IOTHUB_EVENTHUB_CONNECTION_STRING"):
        iothub_connection_strings()


def test_iothub_credentials_default_consumer_group(clean_env):
    clean_env.setenv("IOTHUB_CONNECTION_STRING", "service")
    clean_env.setenv("IOTHUB_EVENTHUB_CONNECTION_STRING", "events")

    assert iothub_connection_strings() == ("service", "events", "$Default")
