"""Azurite's blob service on loopback, with a storage account key made at start."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from plant2edge import settings
from plant2edge.localstack.processes import (
    StackError,
    is_running,
    kill_pid,
    log_tail,
    read_pid,
    spawn,
    stop_pid,
    wait_until,
)

logger = logging.getLogger(__name__)

ACCOUNT_NAME = "plant2edge"
AZURITE_ENV = "PLANT2EDGE_AZURITE"


@dataclass(frozen=True)
class AzuriteFiles:
    folder: Path

    @property
    def pid(self) -> Path:
        return self.folder / "azurite.pid"

    @property
    def log(self) -> Path:
        return self.folder / "azurite.log"

    @property
    def port(self) -> Path:
        return self.folder / "azurite.port"


def find_azurite_blob() -> str:
    """Return the ``azurite-blob`` executable installed by ``make tools``."""
    candidates = []
    if os.environ.get(AZURITE_ENV):
        candidates.append(Path(os.environ[AZURITE_ENV]))
    candidates.append(settings.repo_root() / ".tools/node_modules/.bin/azurite-blob")
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("azurite-blob")
    if found:
        return found
    raise StackError(
        "azurite-blob was not found in "
        f"{candidates[-1]} or on PATH. Install it with 'make tools' "
        f"(npm install azurite@3.35.0), or set {AZURITE_ENV} to its path."
    )


def new_account_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def connection_string(port: int, account_key: str) -> str:
    return (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT_NAME};AccountKey={account_key};"
        f"BlobEndpoint={blob_endpoint(port)};"
    )


def blob_endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}/{ACCOUNT_NAME}"


def _responds_to_http(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def start(
    files: AzuriteFiles, port: int, account_key: str, timeout: float = 30.0
) -> subprocess.Popen:
    """Start ``azurite-blob`` on 127.0.0.1:``port`` and wait until it responds to HTTP.

    The binary is started directly (its ``#!/usr/bin/env node`` line execs node
    in place), so the recorded PID is the server's own.
    """
    files.folder.mkdir(parents=True, exist_ok=True)
    files.port.write_text(f"{port}\n")
    argv = [
        find_azurite_blob(),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        # The access log would record every request URL, SAS tokens included.
        "--silent",
    ]
    # A custom account replaces the documented default account and its
    # published key, so the key in stack.json is a real secret to protect.
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT_NAME}:{account_key}"}
    # The working folder identifies this stack's Azurite, even next to another
    # stack's Azurite on the same port: azurite-blob has no option to carry it.
    process = spawn(
        argv, log_path=files.log, pid_path=files.pid, env=env, cwd=files.folder
    )
    ready = wait_until(
        lambda: _responds_to_http(port) or process.poll() is not None, timeout, 0.05
    )
    if not ready or process.poll() is not None:
        process.kill()
        raise StackError(
            f"Azurite did not respond on 127.0.0.1:{port} within {timeout:.0f} s. "
            f"Log {files.log}:\n{log_tail(files.log)}"
        )
    logger.info("Azurite blob service on 127.0.0.1:%d (pid %d)", port, process.pid)
    return process


def marker(files: AzuriteFiles) -> str:
    """Return the command-line text that identifies this stack's Azurite."""
    try:
        port = int(files.port.read_text())
    except (FileNotFoundError, ValueError):
        return "azurite-blob --blobHost 127.0.0.1 --blobPort"
    return f"--blobPort {port} "


def stop(files: AzuriteFiles) -> bool:
    return stop_pid(files.pid, marker(files), name="Azurite", cwd=files.folder)


def kill(files: AzuriteFiles) -> bool:
    return kill_pid(files.pid, marker(files), name="Azurite", cwd=files.folder)


def running(files: AzuriteFiles) -> bool:
    return is_running(read_pid(files.pid), marker(files), files.folder)
