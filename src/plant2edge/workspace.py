"""``plant2edge workspace``: register components and submit pipelines to Azure ML.

``register`` creates each environment (``environments/*.yaml``) and component
(``components/*/component.yaml``) in the workspace with the version from its
YAML, and skips versions that are already there with the same content.
``submit`` loads ``pipelines/<name>.yaml`` with ``--set`` overrides, as
``az ml job create --set`` does, and submits it. With ``--dry-run`` both build
the same request objects and write them as JSON without any network access or
credentials.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from plant2edge import settings
from plant2edge.validate_sdk import quiet_sdk
from plant2edge.workspace_assets import Outcome, load_assets, register, request_body
from plant2edge.workspace_client import WorkspaceError, connect
from plant2edge.workspace_environments import BASE_IMAGE, write_missing_environments
from plant2edge.workspace_submit import (
    build_job,
    job_request,
    parse_overrides,
    resolve_pipeline,
    submit,
)

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plant2edge workspace",
        description="Register environments and components in an Azure ML workspace, "
        "or submit a pipeline. The workspace comes from AZUREML_SUBSCRIPTION_ID, "
        "AZUREML_RESOURCE_GROUP and AZUREML_WORKSPACE_NAME, or from config.json.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    register_parser = commands.add_parser(
        "register", help="create or update environments and components"
    )
    _add_common(register_parser, "register")

    submit_parser = commands.add_parser(
        "submit", help="submit pipelines/<name>.yaml as a job"
    )
    submit_parser.add_argument(
        "--pipeline", required=True, help="pipeline name (training) or YAML path"
    )
    submit_parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field as az ml job create --set does, e.g. inputs.window_size=300 "
        "(repeatable)",
    )
    submit_parser.add_argument(
        "--experiment",
        help="experiment name (default: experiment_name in the YAML, else "
        "plant2edge-<pipeline>)",
    )
    submit_parser.add_argument(
        "--wait", action="store_true", help="stream the job log until it ends"
    )
    submit_parser.add_argument(
        "--skip-validate",
        action="store_true",
        help="submit even when plant2edge validate finds problems in the pipeline",
    )
    _add_common(submit_parser, "submit")

    sync_parser = commands.add_parser(
        "sync-environments",
        help="write environments/<stage>.yaml for each component that has none",
    )
    sync_parser.add_argument(
        "--image", default=BASE_IMAGE, help=f"base image (default {BASE_IMAGE})"
    )
    sync_parser.add_argument(
        "--repo", type=Path, default=settings.repo_root(), help=argparse.SUPPRESS
    )
    return parser


def _add_common(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="build the requests and write them as JSON; no network, no credentials",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help=f"folder for the --dry-run JSON (default: $PLANT2EDGE_HOME/dry-run/{command})",
    )
    parser.add_argument(
        "--config", type=Path, help="path of the workspace's config.json"
    )
    parser.add_argument(
        "--repo", type=Path, default=settings.repo_root(), help=argparse.SUPPRESS
    )


def write_requests(folder: Path, files: dict[str, dict]) -> Path:
    """Write ``files`` (relative name -> JSON data) into ``folder``, replacing it whole."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        for name, data in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(data, indent=2, default=_to_json) + "\n")
        old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex}"
        if folder.exists():
            os.rename(folder, old)
        os.rename(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _to_json(value):
    # A pipeline's REST body still contains each local component as an entity in
    # componentId; submission registers it as an anonymous component first and
    # puts its ID there. The dry run writes the component's spec instead.
    if hasattr(value, "_to_dict"):
        with quiet_sdk():
            return value._to_dict()
    return str(value)


def run_register(args) -> int:
    assets = load_assets(args.repo)
    if not assets:
        raise WorkspaceError(
            f"nothing to register: no environments/*.yaml or "
            f"components/*/component.yaml under {args.repo}"
        )
    if args.dry_run:
        out = args.out or settings.home() / "dry-run" / "register"
        files = {
            f"{asset.kind}s/{asset.name}-{asset.version}.json": request_body(asset)
            for asset in assets
        }
        files["summary.json"] = {
            "assets": [
                {
                    "kind": a.kind,
                    "name": a.name,
                    "version": a.version,
                    "source": str(a.path),
                }
                for a in assets
            ]
        }
        write_requests(out, files)
        for asset in assets:
            print(Outcome(asset, "dry-run").line())
        print(f"{len(assets)} requests written to {out}")
        return 0
    outcomes = register(connect(args.config), assets)
    for outcome in outcomes:
        print(outcome.line())
    counts = {
        status: sum(o.status == status for o in outcomes)
        for status in ("created", "unchanged", "error")
    }
    print(", ".join(f"{count} {status}" for status, count in counts.items()))
    return 1 if counts["error"] else 0


def run_submit(args) -> int:
    path = resolve_pipeline(args.repo, args.pipeline)
    overrides = parse_overrides(args.overrides)
    job = build_job(path, overrides, args.experiment, args.skip_validate)
    if args.dry_run:
        out = args.out or settings.home() / "dry-run" / f"submit-{path.stem}"
        request = job_request(job, path)
        write_requests(out, {"job.json": request})
        summary = request["summary"]
        print(
            f"pipeline {path.name}: {len(summary['steps'])} steps, experiment "
            f"{summary['experiment_name']}"
        )
        for name, value in summary["inputs"].items():
            print(f"  input {name} = {json.dumps(value, default=str)}")
        print(f"request written to {out / 'job.json'}")
        return 0
    submit(connect(args.config), job, wait=args.wait)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # azure-identity and azure-core log each credential probe and HTTP call at INFO.
    logging.getLogger("azure").setLevel(logging.WARNING)
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    try:
        if args.command == "register":
            return run_register(args)
        if args.command == "submit":
            return run_submit(args)
        written = write_missing_environments(args.repo, args.image)
        print(f"{len(written)} environment files written")
        return 0
    except WorkspaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ClientAuthenticationError as exc:
        print(
            f"error: Azure sign-in failed ({exc.message}); run 'az login' or set "
            "AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET",
            file=sys.stderr,
        )
        return 1
    except HttpResponseError as exc:
        print(
            f"error: the workspace rejected the request: {exc.message}", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
