"""Helpers shared by the breakage tests."""

from __future__ import annotations

from component_scripts import load_component_script

from plant2edge import settings

COMPONENTS_DIR = settings.repo_root() / "components"


def load_script(stage: str, script: str | None = None):
    """Import components/<stage>/<script>.py under a name unique to this folder."""
    return load_component_script(stage, "p2e_breakage", script)
