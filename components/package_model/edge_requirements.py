"""Pinned Python requirements of the edge component.

The edge runtime needs scikit-learn (to load the pickled Pipeline) and whatever
the model's code modules import, and nothing else: no MLflow. Every package of
the dependency closure is pinned to the version installed here, because this
environment is the one the model was trained and validated with.
"""

from __future__ import annotations

import ast
import logging
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

logger = logging.getLogger(__name__)

# AI Inference Server runs Python 3.11 and 3.12 components on 64-bit x86 Linux.
# The edge package uses the Python version of this environment, because the
# model was pickled here and the AI SDK's local runner tests with this
# interpreter.
SUPPORTED_PYTHON = ("3.11", "3.12")
TARGET_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
TARGET_MARKERS = {
    **default_environment(),
    "python_version": TARGET_PYTHON,
    "python_full_version": f"{TARGET_PYTHON}.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
# Packages that must never reach the edge package, even when a code module
# imports them: the edge runtime loads the pickle without the MLflow client.
EXCLUDED = {canonicalize_name(name) for name in ("mlflow", "mlflow-skinny")}


def imported_distributions(module_paths: list[Path]) -> set[str]:
    """Return the installed distributions that the given modules import at top level."""
    local_modules = {path.stem for path in module_paths}
    modules = set()
    for path in module_paths:
        modules |= _top_level_imports(path)
    modules -= local_modules
    modules -= set(sys.stdlib_module_names)
    owners = metadata.packages_distributions()
    distributions = set()
    for module in sorted(modules):
        if module not in owners:
            raise ValueError(
                f"Module {module!r}, imported by the model code "
                f"{[str(p.name) for p in module_paths]}, belongs to no installed "
                "distribution. Install the package that provides it, or remove the "
                "import from the model code."
            )
        distributions.update(canonicalize_name(name) for name in owners[module])
    return distributions


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def pinned_closure(roots: set[str]) -> dict[str, str]:
    """Return ``{distribution: installed version}`` for ``roots`` and their dependencies.

    Dependencies are followed as declared in the installed metadata, with
    environment markers evaluated for the edge target (Linux x86_64, Python 3.11)
    and without extras.
    """
    pins: dict[str, str] = {}
    pending = sorted(canonicalize_name(name) for name in roots)
    while pending:
        name = pending.pop()
        if name in pins:
            continue
        if name in EXCLUDED:
            raise ValueError(
                f"The edge package would need {name!r}. The edge runtime must stay "
                "free of MLflow: remove the MLflow import from the model code."
            )
        try:
            pins[name] = metadata.version(name)
        except metadata.PackageNotFoundError as exc:
            raise ValueError(
                f"Package {name!r} is needed on the edge but is not installed here, "
                "so its version cannot be pinned. Install it in this environment."
            ) from exc
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            marker_env = {**TARGET_MARKERS, "extra": ""}
            if requirement.marker and not requirement.marker.evaluate(marker_env):
                continue
            pending.append(canonicalize_name(requirement.name))
    return dict(sorted(pins.items()))


def edge_requirements(code_modules: list[Path], extra: tuple[str, ...] = ()) -> dict:
    """Return the pinned requirements of the edge component.

    The roots are scikit-learn, the distributions imported by ``code_modules``
    and ``extra``; the result pins their whole dependency closure.
    """
    roots = {"scikit-learn", *imported_distributions(code_modules), *extra}
    pins = pinned_closure(roots)
    logger.info(
        "Edge requirements: %s",
        ", ".join(f"{name}=={version}" for name, version in pins.items()),
    )
    return pins


def requirements_text(pins: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in pins.items())
