"""Check the code snapshot that Azure ML uploads for a component.

The file selection is the one ``mldesigner compile --source X.yaml --output DIR``
makes (mldesigner 0.1.0b23): every file under the ``code`` folder, minus what the
folder's own ``.amlignore`` excludes (or its ``.gitignore`` when there is no
``.amlignore``), minus ``__pycache__``. Ignore files in parent folders, such as
the repository's ``.gitignore``, do not apply. azure-ai-ml 1.35 selects the same
files when it uploads the code of a component.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from plant2edge.validate_common import Finding, names
from plant2edge.validate_yaml import YamlDoc

logger = logging.getLogger(__name__)

# Azure ML rejects a snapshot over 300 MB; the default limit of plant2edge is far
# lower because a component folder should hold only code and its conda file.
DEFAULT_LIMIT_MB = 10.0
AZURE_LIMIT_MB = 300
CACHE_DIRS = {
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".ipynb_checkpoints",
}
CACHE_SUFFIXES = {".pyc", ".pyo"}
DATA_SUFFIXES = {".parquet", ".csv", ".tsv", ".feather"}
LISTED_FILES = 5


@dataclass(frozen=True)
class SnapshotFile:
    path: Path
    relative: str
    size: int


def snapshot_files(code_dir: Path) -> list[SnapshotFile]:
    """Return the files that registering a component with ``code_dir`` uploads."""
    # NOTE: private helpers of mldesigner 0.1.0b23, the code behind
    # `mldesigner compile`; tests/validate compares them with a real compile run.
    from mldesigner._compile._ignore_file import ComponentIgnoreFile
    from mldesigner._compile._utils import get_upload_files_from_folder

    ignore_file = ComponentIgnoreFile(code_dir)
    selected = get_upload_files_from_folder(code_dir, ignore_file=ignore_file)
    files = [
        SnapshotFile(Path(absolute), relative, Path(absolute).stat().st_size)
        for absolute, relative in selected
    ]
    return sorted(files, key=lambda item: item.relative)


def is_cache(relative: str) -> bool:
    parts = Path(relative).parts
    return (
        bool(CACHE_DIRS.intersection(parts)) or Path(relative).suffix in CACHE_SUFFIXES
    )


def is_data(relative: str) -> bool:
    return Path(relative).suffix.lower() in DATA_SUFFIXES


def check_snapshot(doc: YamlDoc, limit_mb: float = DEFAULT_LIMIT_MB) -> list[Finding]:
    """Check the snapshot of the component in ``doc`` for caches, data and size."""
    code = (doc.data or {}).get("code")
    if not isinstance(code, str) or code.startswith("azureml:"):
        return []
    code_dir = (doc.path.parent / code).resolve()
    if not code_dir.is_dir():
        return []  # azure-ai-ml reports a missing code folder itself.
    files = snapshot_files(code_dir)
    logger.debug("%s: %d files in the snapshot", doc.path, len(files))
    problems = [
        _cache_problem(code_dir, files),
        _data_problem(code_dir, files),
        _size_problem(code_dir, files, limit_mb),
    ]
    return [
        Finding(doc.path, doc.line_of("code"), message, fix, field="code")
        for message, fix in problems
        if message
    ]


def _cache_problem(code_dir: Path, files: list[SnapshotFile]) -> tuple[str, str]:
    caches = [item.relative for item in files if is_cache(item.relative)]
    if not caches:
        return "", ""
    return (
        f"code snapshot {code_dir.name}/ contains caches: {_listing(caches)}",
        (
            f"delete them, or add '.pytest_cache/' and '*.pyc' to "
            f"{code_dir.name}/{_ignore_file_name(code_dir)}"
        ),
    )


def _data_problem(code_dir: Path, files: list[SnapshotFile]) -> tuple[str, str]:
    data = [item.relative for item in files if is_data(item.relative)]
    if not data:
        return "", ""
    return (
        f"code snapshot {code_dir.name}/ contains data files: {_listing(data)}",
        (
            "move test data out of the component folder, or add the files to "
            f"{code_dir.name}/{_ignore_file_name(code_dir)}"
        ),
    )


def _size_problem(
    code_dir: Path, files: list[SnapshotFile], limit_mb: float
) -> tuple[str, str]:
    total = sum(item.size for item in files)
    if total <= limit_mb * 1024 * 1024:
        return "", ""
    largest = sorted(files, key=lambda item: item.size, reverse=True)[:3]
    biggest = names(f"{item.relative} ({_mb(item.size)})" for item in largest)
    return (
        (
            f"code snapshot {code_dir.name}/ is {_mb(total)} in {len(files)} files, "
            f"over the limit of {limit_mb:g} MB (Azure ML rejects more than "
            f"{AZURE_LIMIT_MB} MB); largest: {biggest}"
        ),
        (
            f"exclude large files in {code_dir.name}/{_ignore_file_name(code_dir)}, or "
            "raise the limit with --max-snapshot-mb"
        ),
    )


def _ignore_file_name(code_dir: Path) -> str:
    # .amlignore replaces .gitignore when both exist, so name the one in effect.
    if (code_dir / ".gitignore").is_file() and not (code_dir / ".amlignore").is_file():
        return ".gitignore"
    return ".amlignore"


def _listing(relatives: list[str]) -> str:
    listed = names(relatives[:LISTED_FILES])
    more = len(relatives) - LISTED_FILES
    return f"{listed} and {more} more" if more > 0 else listed


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"
