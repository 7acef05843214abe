"""The local stack's state folder: config, certificates, keys, PIDs and logs."""

from __future__ import annotations

import os
from pathlib import Path

from plant2edge import settings

STATE_DIR_ENV = "PLANT2EDGE_LOCALSTACK_DIR"
STACK_FILE = "stack.json"


def default_state_dir() -> Path:
    """Return ``$PLANT2EDGE_LOCALSTACK_DIR`` or ``<plant2edge home>/localstack``."""
    return Path(
        os.environ.get(STATE_DIR_ENV) or settings.home() / "localstack"
    ).resolve()
