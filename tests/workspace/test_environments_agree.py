"""Each component's conda.yaml agrees with requirements.txt and with its own imports.

A component runs in Azure ML with the packages of its conda file, and locally in
the shared venv built from requirements.txt. Both must therefore pin the same
versions, and every module a script imports must come from the component's own
conda file.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest
import yaml

from plant2edge import settings

REPO = settings.repo_root()
STAGES = sorted(path.parent.name for path in REPO.glob("components/*/conda.yaml"))
PYTHON_PIN = re.compile(r"^python\s*==?\s*3\.11(\.\d+|\.\*)?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return pins


def conda_spec(stage: str) -> dict:
    return yaml.safe_load((REPO / "components" / stage / "conda.yaml").read_text())


def pip_entries(spec: dict) -> list[str]:
    entries = []
    for item in spec.get("dependencies") or []:
        if isinstance(item, dict):
            entries += [str(entry) for entry in item.get("pip") or []]
    return entries


def pip_pins(spec: dict) -> dict[str, str]:
    pins = {}
    for entry in pip_entries(spec):
        name, _, version = entry.partition("==")
        pins[canonical(name.split("[", 1)[0].strip())] = version.strip()
    return pins


def optional_import_lines(tree: ast.AST) -> set[int]:
    """Return the lines of imports inside `try: ... except ImportError`."""
    lines = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = " ".join(ast.unparse(h.type) for h in node.handlers if h.type)
        if "ImportError" in caught or "ModuleNotFoundError" in caught:
            lines |= {
                child.lineno
                for statement in node.body
                for child in ast.walk(statement)
                if isinstance(child, ast.Import | ast.ImportFrom)
            }
    return lines


def imported_modules(script: Path) -> set[str]:
    """Return the top-level modules that ``script`` imports unconditionally."""
    tree = ast.parse(script.read_text(), filename=str(script))
    optional = optional_import_lines(tree)
    modules = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in optional:
            continue
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def local_modules(folder: Path) -> set[str]:
    return {path.stem for path in folder.glob("*.py")} | {
        path.parent.name for path in folder.glob("*/__init__.py")
    }


def scripts(folder: Path) -> list[Path]:
    return sorted(
        path for path in folder.rglob("*.py") if "__pycache__" not in path.parts
    )


def test_components_have_conda_files():
    specs = sorted(
        path.parent.name for path in REPO.glob("components/*/component.yaml")
    )
    assert specs, "no components/*/component.yaml found"
    assert [stage for stage in specs if stage not in STAGES] == []


@pytest.mark.parametrize("stage", STAGES)
def test_conda_file_pins_python_311(stage):
    dependencies = conda_spec(stage).get("dependencies") or []
    pythons = [d for d in dependencies if isinstance(d, str) and d.startswith("python")]

    assert len(pythons) == 1, f"components/{stage}/conda.yaml: {pythons}"
    assert PYTHON_PIN.match(pythons[0]), (
        f"components/{stage}/conda.yaml pins {pythons[0]!r}; use python=3.11"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_conda_pip_pins_match_requirements(stage):
    entries = pip_entries(conda_spec(stage))
    requirements = requirement_pins()

    unpinned = [entry for entry in entries if "==" not in entry]
    mismatched = {
        name: (version, requirements.get(name))
        for name, version in pip_pins(conda_spec(stage)).items()
        if requirements.get(name) != version
    }

    assert unpinned == [], f"components/{stage}/conda.yaml: pin each with =="
    assert mismatched == {}, (
        f"components/{stage}/conda.yaml pins (conda, requirements.txt): {mismatched}"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_component_imports_come_from_its_conda_file(stage):
    folder = REPO / "components" / stage
    provided = set(pip_pins(conda_spec(stage)))
    distributions = importlib.metadata.packages_distributions()
    local = local_modules(folder)
    problems = []
    for script in scripts(folder):
        for module in sorted(imported_modules(script)):
            if module in sys.stdlib_module_names or module in local:
                continue
            owners = {canonical(d) for d in distributions.get(module, [])}
            if not owners:
                problems.append(f"{script.name}: {module} is not installed in .venv")
            elif not owners & provided:
                problems.append(
                    f"{script.name}: import {module} needs one of {sorted(owners)} "
                    "in conda.yaml"
                )

    assert problems == [], f"components/{stage}: " + "; ".join(problems)


def test_imported_modules_skips_optional_and_relative_imports(tmp_path):
    script = tmp_path / "entry.py"
    script.write_text(
        "import os, numpy.linalg\n"
        "from pandas import DataFrame\n"
        "from . import sibling\n"
        "try:\n"
        "    from log_module import LogModule\n"
        "except ImportError:\n"
        "    LogModule = None\n"
    )

    assert imported_modules(script) == {"os", "numpy", "pandas"}


def test_requirement_pins_read_shared_requirements():
    pins = requirement_pins()

    assert {"azure-ai-ml", "scikit-learn", "paho-mqtt"} <= set(pins)
    assert all(re.match(r"^\d", version) for version in pins.values()), pins
