"""Helpers shared by the breakage tests."""

from __future__ import annotations

import importlib.util
import sys

from plant2edge import settings

COMPONENTS_DIR = settings.repo_root() / "components"


def load_script(stage: str, script: str | None = None):
    """Import components/<stage>/<script>.py under a name unique to this folder.

    The component folder goes on sys.path, as it is when the step runs, so that
    the script can import the other modules of its folder.
    """
    script = script or stage
    module_name = f"p2e_breakage_{script}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    folder = COMPONENTS_DIR / stage
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    spec = importlib.util.spec_from_file_location(module_name, folder / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
