"""Environments and components as azure-ai-ml entities, and their idempotent registration.

A registered asset version in Azure ML cannot change. Registration therefore
gets the version named in the YAML first. A missing version is created, one with
equal content is skipped, and one with different content is an error whose
message proposes the next version number.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from plant2edge.validate_sdk import load_entity, quiet_sdk
from plant2edge.validate_snapshot import snapshot_files

logger = logging.getLogger(__name__)

# Tag that registration adds to each component: a SHA-256 of its spec (without
# the local code path) and of every file in its code snapshot. The service keeps
# only a content hash of the code, so a later run compares this tag to find out
# whether the registered version contains the same code.
FINGERPRINT_TAG = "plant2edge_fingerprint"


@dataclass
class Asset:
    """One environment or component to register, with the entity azure-ai-ml sends."""

    kind: str  # "environment" or "component"
    path: Path
    entity: object
    fingerprint: str = ""
    code_dir: Path | None = None

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def version(self) -> str:
        return str(self.entity.version)

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}:{self.version}"


@dataclass
class Outcome:
    asset: Asset
    status: str  # created, unchanged, error or dry-run
    detail: str = ""
    differences: list[str] = field(default_factory=list)

    def line(self) -> str:
        text = f"{self.status:<9} {self.asset.label}"
        return f"{text}: {self.detail}" if self.detail else text


def load_assets(repo: Path) -> list[Asset]:
    """Load every ``environments/*.yaml`` and ``components/*/component.yaml``.

    Environments come first because teams may point components at them.
    """
    assets = [
        Asset("environment", path, load_entity("environment", path))
        for path in sorted((repo / "environments").glob("*.yaml"))
    ]
    for path in sorted((repo / "components").glob("*/component.yaml")):
        assets.append(load_component_asset(path))
    return assets


def load_component_asset(path: Path) -> Asset:
    entity = load_entity("component", path)
    code_dir = Path(path.parent, entity.code).resolve() if entity.code else None
    fingerprint = component_fingerprint(entity, code_dir)
    entity.tags = {**(entity.tags or {}), FINGERPRINT_TAG: fingerprint}
    return Asset("component", path, entity, fingerprint, code_dir)


def component_fingerprint(entity, code_dir: Path | None) -> str:
    """Return the SHA-256 of a component's spec and its code snapshot."""
    with quiet_sdk():
        spec = entity._to_dict()
    spec.pop("code", None)
    tags = dict(spec.get("tags") or {})
    tags.pop(FINGERPRINT_TAG, None)
    spec["tags"] = tags
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
    for item in snapshot_files(code_dir) if code_dir else []:
        digest.update(item.relative.encode() + b"\0")
        digest.update(hashlib.sha256(item.path.read_bytes()).digest())
    return digest.hexdigest()


def request_body(asset: Asset) -> dict:
    """Return what ``create_or_update`` would send: the entity and its REST body."""
    with quiet_sdk():
        entity = asset.entity._to_dict()
        rest = asset.entity._to_rest_object().as_dict()
    body = {
        "kind": asset.kind,
        "name": asset.name,
        "version": asset.version,
        "source": str(asset.path),
        "entity": entity,
        "rest_body": rest,
    }
    if asset.kind == "component":
        body["code"] = str(asset.code_dir)
        body["fingerprint"] = asset.fingerprint
    return body


def operations(client, asset: Asset):
    return client.environments if asset.kind == "environment" else client.components


def register(client, assets: list[Asset]) -> list[Outcome]:
    """Create missing asset versions; skip equal ones; report changed ones as errors."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    outcomes = []
    for index, asset in enumerate(assets, start=1):
        logger.info("asset %d of %d: %s", index, len(assets), asset.label)
        ops = operations(client, asset)
        try:
            try:
                existing = ops.get(name=asset.name, version=asset.version)
            except ResourceNotFoundError:
                existing = None
            if existing is None:
                ops.create_or_update(asset.entity)
                outcomes.append(Outcome(asset, "created"))
                continue
            differences = differences_from(asset, existing)
            if not differences:
                outcomes.append(Outcome(asset, "unchanged"))
                continue
            outcomes.append(
                Outcome(asset, "error", _bump_message(asset, differences), differences)
            )
        except HttpResponseError as exc:
            detail = f"the workspace rejected the request: {exc.message or exc}"
            outcomes.append(Outcome(asset, "error", detail))
    return outcomes


def _bump_message(asset: Asset, differences: list[str]) -> str:
    version = asset.version
    proposal = str(int(version) + 1) if version.isdigit() else f"{version}.1"
    return (
        f"version {version} exists in the workspace with different content "
        f"({', '.join(differences)}), and a registered version cannot change; set "
        f'version: "{proposal}" in {asset.path} and register again'
    )


def differences_from(asset: Asset, existing) -> list[str]:
    """Return the names of the fields in which ``existing`` differs from ``asset``."""
    if asset.kind == "environment":
        return _environment_differences(asset.entity, existing)
    return _component_differences(asset, existing)


def _environment_differences(local, remote) -> list[str]:
    differences = []
    if (local.image or None) != (getattr(remote, "image", None) or None):
        differences.append("image")
    if _normalise(local.conda_file) != _normalise(getattr(remote, "conda_file", None)):
        differences.append("conda_file")
    return differences


def _component_differences(asset: Asset, remote) -> list[str]:
    remote_fingerprint = (getattr(remote, "tags", None) or {}).get(FINGERPRINT_TAG)
    if remote_fingerprint:
        return [] if remote_fingerprint == asset.fingerprint else ["code or spec"]
    # NOTE: a version registered without this tool (az ml component create) has no
    # fingerprint. Its spec is compared field by field; its code is not compared.
    local = asset.entity
    differences = [
        name
        for name in ("display_name", "description", "command", "is_deterministic")
        if getattr(local, name, None) != getattr(remote, name, None)
    ]
    for name in ("inputs", "outputs"):
        if _ports(getattr(local, name, {})) != _ports(getattr(remote, name, {})):
            differences.append(name)
    environment_hash = getattr(local.environment, "version", None)
    if environment_hash and environment_hash not in str(remote.environment):
        differences.append("environment")
    return differences


def _ports(ports) -> dict:
    return {
        name: port._to_dict() if hasattr(port, "_to_dict") else port
        for name, port in (ports or {}).items()
    }


def _normalise(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str)) if value else None
