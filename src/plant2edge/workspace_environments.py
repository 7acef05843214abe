"""Azure ML environment definitions: one ``environments/<stage>.yaml`` per component.

Each component keeps its inline environment so that its folder stays
self-contained. The files under ``environments/`` describe the same image and
conda file as named, versioned environments that teams can register and reuse.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

# Azure ML base image, pinned to a dated tag so that a rebuild gives the same
# system libraries. The release notes of github.com/Azure/AzureML-Containers
# (images/openmpi5.0-ubuntu24.04) list the tags and their security fixes. This tag
# is the base of Azure ML's curated environments (Azure/azureml-assets) of
# September 2026. Python comes from each conda file, not from the image.
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi5.0-ubuntu24.04:20260901.v1"
ENVIRONMENT_SCHEMA = (
    "https://azuremlschemas.azureedge.net/latest/environment.schema.json"
)
ENVIRONMENT_PREFIX = "plant2edge-"


def component_stages(repo: Path) -> list[str]:
    """Return the stage names of ``components/<stage>/component.yaml`` under ``repo``."""
    return sorted(
        path.parent.name for path in (repo / "components").glob("*/component.yaml")
    )


def environment_name(stage: str) -> str:
    return ENVIRONMENT_PREFIX + stage.replace("_", "-")


def render_environment(stage: str, description: str, image: str = BASE_IMAGE) -> str:
    """Return the YAML text of the environment of component ``stage``."""
    return (
        f"$schema: {ENVIRONMENT_SCHEMA}\n"
        f"name: {environment_name(stage)}\n"
        'version: "1"\n'
        f"description: {description}\n"
        f"image: {image}\n"
        f"conda_file: ../components/{stage}/conda.yaml\n"
    )


def write_missing_environments(repo: Path, image: str = BASE_IMAGE) -> list[Path]:
    """Write ``environments/<stage>.yaml`` for each component that has none.

    Existing files are left as they are. Returns the files written.
    """
    folder = repo / "environments"
    folder.mkdir(exist_ok=True)
    written = []
    for stage in component_stages(repo):
        target = folder / f"{stage}.yaml"
        if target.exists():
            continue
        description = f"Python and pinned packages of components/{stage}."
        _write_atomic(target, render_environment(stage, description, image))
        logger.info("wrote %s", target)
        written.append(target)
    return written


def _write_atomic(target: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
