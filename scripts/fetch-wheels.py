#!/usr/bin/env python
"""Fill the local wheel cache for building and testing edge packages offline.

Downloads, with ``pip download`` from the configured package index, the wheels
of the edge component's pinned requirements for AI Inference Server's platform
(Linux x86_64, this interpreter's CPython version), plus ``joblib``, which the AI SDK's local pipeline
runner installs into every test environment. A second run finds everything in
the cache and needs no network.

    .venv/bin/python scripts/fetch-wheels.py            # into <home>/cache/wheels
    .venv/bin/python scripts/fetch-wheels.py --dest DIR -r requirements.txt

Point the packaging steps at the folder with ``PIP_FIND_LINKS=DIR`` and
``PIP_NO_INDEX=1``.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from plant2edge import settings

logger = logging.getLogger("fetch-wheels")

REPO_ROOT = settings.repo_root()
# The runner's test environments also install these with pip.
RUNNER_PACKAGES = ("joblib", "pip", "setuptools")
# pandas is imported by the state identifier's window code.
DEFAULT_ROOTS = ("scikit-learn", "pandas")
# Platform tags accepted by AI Inference Server, as simaticai 2.9.0 lists them
# (simaticai.packaging.constants.PLATFORMS).
PLATFORMS = [
    "any",
    "manylinux1_x86_64",
    "manylinux2010_x86_64",
    "manylinux2014_x86_64",
    "linux_x86_64",
] + [f"manylinux_2_{minor}_x86_64" for minor in range(5, 32)]


def default_wheel_dir() -> Path:
    return settings.cache_dir() / "wheels"


@functools.cache
def _load_edge_requirements():
    path = REPO_ROOT / "components" / "package_model" / "edge_requirements.py"
    spec = importlib.util.spec_from_file_location("edge_requirements", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def default_requirements() -> list[str]:
    """Return the pinned edge requirements of the state identifier plus the runner's."""
    edge = _load_edge_requirements()
    pins = edge.pinned_closure({*DEFAULT_ROOTS, *RUNNER_PACKAGES})
    return [f"{name}=={version}" for name, version in pins.items()]


def pip_download(requirements: list[str], dest: Path, offline: bool) -> int:
    target_python = _load_edge_requirements().TARGET_PYTHON
    with tempfile.TemporaryDirectory(prefix="fetch-wheels-") as tmp:
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("\n".join(requirements) + "\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-color",
            "-r",
            str(req_file),
            "-d",
            str(dest),
            "--find-links",
            str(dest),
            "--python-version",
            target_python,
            "--only-binary=:all:",
        ]
        for platform in PLATFORMS:
            command += ["--platform", platform]
        env = dict(os.environ)
        # Only the cache and the configured index count, not other local folders.
        env["PIP_FIND_LINKS"] = str(dest)
        if offline:
            env["PIP_NO_INDEX"] = "1"
        else:
            env.pop("PIP_NO_INDEX", None)
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0 and not offline:
            logger.error("pip download failed:\n%s", result.stderr.strip())
        return result.returncode


def fetch_wheels(dest: Path, requirements: list[str] | None = None) -> Path:
    """Make sure ``dest`` contains wheels for ``requirements``; download the missing ones.

    Raises RuntimeError when the wheels are neither cached nor downloadable.
    """
    requirements = requirements or default_requirements()
    dest.mkdir(parents=True, exist_ok=True)
    if pip_download(requirements, dest, offline=True) == 0:
        logger.info(
            "Wheel cache %s already contains all %d requirements",
            dest,
            len(requirements),
        )
        return dest
    logger.info("Downloading %d requirements into %s", len(requirements), dest)
    if pip_download(requirements, dest, offline=False) != 0:
        raise RuntimeError(
            f"Could not download the edge wheels into {dest}. Check that the package "
            "index (PyPI or PIP_INDEX_URL) is reachable, then run "
            "scripts/fetch-wheels.py again."
        )
    return dest


def _read_requirements(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dest",
        type=Path,
        default=None,
        help="wheel folder (default: <PLANT2EDGE_HOME or ./.plant2edge>/cache/wheels)",
    )
    parser.add_argument(
        "-r",
        "--requirement",
        type=Path,
        action="append",
        default=[],
        help="requirements file to fetch instead of the default edge requirements; "
        "joblib, pip and setuptools are always added",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    requirements = None
    if args.requirement:
        requirements = [*RUNNER_PACKAGES]
        for path in args.requirement:
            requirements += _read_requirements(path)
    dest = (args.dest or default_wheel_dir()).resolve()
    try:
        fetch_wheels(dest, requirements)
    except RuntimeError as exc:
        logger.error("%s", exc)
        return 1
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
