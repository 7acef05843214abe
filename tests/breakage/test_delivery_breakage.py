"""Breaking the delivery step: odd device ids, endless timeouts, cancels, lost sends.

A bad value must stop the step with an error that names it; a cancelled step
must leave no copy of the package in TMPDIR.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import mlflow
import pytest

from plant2edge import settings
from plant2edge.localstack import start_stack
from plant2edge.localstack.processes import free_port, wait_until

COMPONENT_DIR = settings.repo_root() / "components" / "deliver_package"
if str(COMPONENT_DIR) not in sys.path:
    sys.path.insert(0, str(COMPONENT_DIR))

from deliver_package import DeliveryError, DeliveryRequest

PACKAGE_NAME = "state-identifier_edge"


def request(**overrides) -> DeliveryRequest:
    values = {
        "package_name": PACKAGE_NAME,
        "device_id": "amm-1",
        "project_id": "line-7",
        "transport": "mqtt",
    }
    values.update(overrides)
    return DeliveryRequest(**values)


@pytest.mark.parametrize("seconds", [1e300, float("inf"), 86400.5])
def test_delivery_rejects_endless_timeout(seconds):
    with pytest.raises(DeliveryError, match=r"timeout_seconds .* 86400"):
        request(timeout_seconds=seconds).validate()


def test_delivery_accepts_one_day_timeout():
    request(timeout_seconds=86400).validate()
