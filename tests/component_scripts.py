"""Import component scripts in tests the way a step imports them."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from plant2edge import settings

COMPONENTS_DIR = settings.repo_root() / "components"


def load_component_script(
    stage: str, prefix: str, script: str | None = None
) -> ModuleType:
    """Import components/<stage>/<script>.py once, as ``<prefix>_<script>``.

    The component folder goes on sys.path, as it is when the step runs, so that
    the script can import the other modules of its folder. The prefix keeps
    each test folder's copy of a script apart from the others.
    """
    script = script or stage
    module_name = f"{prefix}_{script}"
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
