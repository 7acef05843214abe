"""``plant2edge validate``: check component, pipeline, schedule and environment YAML.

First azure-ai-ml 1.35 loads and validates each file the way ``az ml`` would.
Then the checks of this project look for the mistakes it lets through:

- step inputs that the component does not declare, values outside an enum or
  range, bindings to missing steps or outputs, and cycles;
- optional inputs outside ``$[[...]]``, unknown keys and unquoted versions;
- missing descriptions and display names, which the designer shows;
- side effects without ``is_deterministic: false``;
- code snapshots that contain caches or data, or exceed a size limit.

Each finding is printed as ``path:line: message (fix: ...)``. The exit code is 1
when there is any finding.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from plant2edge import settings
from plant2edge.validate_common import Finding
from plant2edge.validate_components import (
    check_component,
    check_image_pinned,
    check_version,
)
from plant2edge.validate_pipelines import check_pipeline
from plant2edge.validate_sdk import check_with_sdk
from plant2edge.validate_snapshot import DEFAULT_LIMIT_MB, check_snapshot
from plant2edge.validate_yaml import YamlDoc, YamlError, load_yaml

logger = logging.getLogger(__name__)

YAML_SUFFIXES = {".yaml", ".yml"}


@dataclass
class Report:
    files: list[Path] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.files)} files checked, {len(self.findings)} findings"


def discover(root: Path) -> list[tuple[Path, str]]:
    """Return the (file, kind) pairs of a repository laid out like this one."""
    found = [
        (path, "component") for path in sorted(root.glob("components/*/component.yaml"))
    ]
    found += [(path, "pipeline") for path in _yaml_files(root / "pipelines")]
    found += [
        (path, "schedule") for path in _yaml_files(root / "pipelines" / "schedules")
    ]
    found += [(path, "environment") for path in _yaml_files(root / "environments")]
    return found


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.suffix in YAML_SUFFIXES)


def classify(data) -> str | None:
    """Return the kind of an Azure ML YAML spec from its ``$schema`` or keys."""
    if not isinstance(data, dict):
        return None
    schema = str(data.get("$schema", "")).lower()
    for marker, kind in (
        ("component", "component"),
        ("pipelinejob", "pipeline"),
        ("schedule", "schedule"),
        ("environment", "environment"),
    ):
        if marker in schema:
            return kind
    if data.get("type") == "pipeline":
        return "pipeline"
    if "trigger" in data and "create_job" in data:
        return "schedule"
    if data.get("type") == "command" and "command" in data:
        return "component"
    if ("image" in data or "build" in data) and "command" not in data:
        return "environment"
    return None


def collect(paths: list[Path]) -> list[tuple[Path, str | None]]:
    """Expand command-line paths into (file, kind) pairs; kind None = by content."""
    found: list[tuple[Path, str | None]] = []
    for path in paths:
        if path.is_dir() and (
            (path / "components").is_dir() or (path / "pipelines").is_dir()
        ):
            found += discover(path)
        elif path.is_dir():
            found += [
                (item, None)
                for item in sorted(path.rglob("*"))
                if item.suffix in YAML_SUFFIXES
            ]
        else:
            found.append((path, None))
    return found


class Validator:
    """Run every check over a set of files, loading each component once."""

    def __init__(self, limit_mb: float = DEFAULT_LIMIT_MB):
        self.limit_mb = limit_mb
        self._components: dict[Path, YamlDoc | None] = {}

    def run(self, targets: list[tuple[Path, str | None]]) -> Report:
        report = Report()
        for path, kind in targets:
            if not path.is_file():
                report.files.append(path)
                report.findings.append(
                    Finding(path, 1, "file not found", "give an existing YAML file")
                )
                continue
            try:
                doc = load_yaml(path)
            except YamlError as exc:
                report.files.append(path)
                report.findings.append(
                    Finding(
                        path, exc.line, str(exc), "fix the YAML syntax at that line"
                    )
                )
                continue
            kind = kind or classify(doc.data)
            if kind is None:
                logger.info("skipping %s: not an Azure ML spec", path)
                continue
            report.files.append(path)
            report.findings += self.check(doc, kind)
        report.findings = sorted(
            set(report.findings), key=lambda f: (str(f.path), f.line, f.message)
        )
        return report

    def check(self, doc: YamlDoc, kind: str) -> list[Finding]:
        """Return the findings of one file: azure-ai-ml's first, then ours."""
        logger.debug("checking %s as a %s", doc.path, kind)
        sdk = check_with_sdk(doc, kind)
        own = self._own_checks(doc, kind)
        covered = {finding.field for finding in own if finding.field}
        # A check of this project on the same field gives the exact line and a fix.
        sdk = [finding for finding in sdk if finding.field not in covered]
        return sdk + own

    def _own_checks(self, doc: YamlDoc, kind: str) -> list[Finding]:
        if not isinstance(doc.data, dict):
            return []
        if kind == "component":
            return check_component(doc) + check_snapshot(doc, self.limit_mb)
        if kind == "pipeline":
            return check_pipeline(doc, self.component)
        if kind == "environment":
            return check_environment(doc, self.component)
        return []

    def component(self, path: Path) -> YamlDoc | None:
        path = path.resolve()
        if path not in self._components:
            try:
                self._components[path] = load_yaml(path)
            except (OSError, YamlError):
                self._components[path] = None
        return self._components[path]


def check_environment(doc: YamlDoc, load_component) -> list[Finding]:
    """Check an environment file: quoted version, pinned image, same as its component."""
    findings = check_version(doc, "environment") + check_image_pinned(doc, ("image",))
    conda = doc.data.get("conda_file")
    if not isinstance(conda, str):
        return findings
    component_path = (doc.path.parent / conda).resolve().parent / "component.yaml"
    component = load_component(component_path) if component_path.is_file() else None
    if component is None or not isinstance(component.data, dict):
        return findings
    inline = component.data.get("environment")
    image = inline.get("image") if isinstance(inline, dict) else None
    if image and doc.data.get("image") != image:
        findings.append(
            Finding(
                doc.path,
                doc.value_line("image"),
                f"image {doc.data.get('image')} differs from the inline environment "
                f"of {component_path.parent.name}/component.yaml ({image})",
                "use the same pinned image in both files",
                field="image",
            )
        )
    return findings


def validate(paths: list[Path], limit_mb: float = DEFAULT_LIMIT_MB) -> Report:
    """Check ``paths`` (files, folders, or repository roots) and return the report."""
    return Validator(limit_mb).run(collect(paths))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plant2edge validate",
        description="Check component, pipeline, schedule and environment YAML "
        "offline. Prints path:line: message (fix: ...) per finding; exit code 1 "
        "when there is any.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        help="YAML files, folders, or a repository root (default: this repository: "
        "components/*/component.yaml, pipelines/, pipelines/schedules/, environments/)",
    )
    parser.add_argument(
        "--max-snapshot-mb",
        type=float,
        default=DEFAULT_LIMIT_MB,
        help=f"largest accepted code snapshot per component, in MB "
        f"(default {DEFAULT_LIMIT_MB:g})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log each file checked"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    root = settings.repo_root()
    report = validate(args.paths or [root], args.max_snapshot_mb)
    for finding in report.findings:
        print(finding.format(Path.cwd()))
    print(report.summary())
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
