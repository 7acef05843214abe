"""Pinned Python requirements of the edge component.

The edge runtime needs scikit-learn (to load the pickled Pipeline) and whatever
the model's code modules import, and nothing else: no MLflow. Every package of
the dependency closure is pinned to the version installed here, because this
environment is the one the model was trained and validated with.
"""

from __future__ import annotations

import ast
import logging
import re
import sys
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

# AI Inference Server runs Python 3.11 and 3.12 components on 64-bit x86 Linux.
# The edge package uses the Python version of this environment, because the
# model was pickled here and the AI SDK's local runner tests with this
# interpreter.
SUPPORTED_PYTHON = ("3.11", "3.12")
TARGET_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# The distribution name at the start of a requirement string (PEP 508).
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
# Packages that must never reach the edge package, even when a code module
# imports them: the edge runtime loads the pickle without the MLflow client.
EXCLUDED = {"mlflow", "mlflow-skinny"}


def canonicalize_name(name: str) -> str:
    """Return the normalized distribution name (PEP 503): lower case, runs of -_. as -."""
    return re.sub(r"[-_.]+", "-", name).lower()


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

    Dependencies are followed as declared in the installed metadata, without
    extras. A dependency that is not installed is one whose environment marker
    excluded it here, which matches the edge target as long as this environment
    runs Linux x86_64 with the target's Python version (TARGET_PYTHON).
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
            dependency = _required_distribution(line)
            if dependency is not None:
                pending.append(dependency)
    return dict(sorted(pins.items()))


def _required_distribution(line: str) -> str | None:
    """Return the distribution a requirement line needs here, or None if it needs none."""
    requirement, _, marker = line.partition(";")
    if re.search(r"\bextra\s*==", marker):
        return None
    match = REQUIREMENT_NAME.match(requirement)
    if match is None:
        raise ValueError(f"Cannot read the requirement {line!r} in installed metadata.")
    name = canonicalize_name(match.group(1))
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    return name


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


def warn_about_training_versions(
    pins: dict[str, str], model_requirements: Path
) -> None:
    """Log each pin that differs from the version the model's requirements.txt records."""
    if not model_requirements.is_file():
        return
    for line in model_requirements.read_text(encoding="utf-8").splitlines():
        name, separator, version = line.split("#", 1)[0].strip().partition("==")
        name = canonicalize_name(name.strip())
        if separator and name in pins and pins[name] != version.strip():
            logger.warning(
                "The model was saved with %s==%s, but this environment has %s==%s, "
                "which the edge package pins. Package the model in an environment "
                "built from the training pins to get the training version.",
                name,
                version.strip(),
                name,
                pins[name],
            )


def requirements_text(pins: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in pins.items())
