"""``plant2edge approve``: approve an edge package version for one environment.

The approval is the model version tag ``approval.<environment>`` (JSON with who
approved and when). The delivery step rejects a version without it when
``require_approval`` is true.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import re
import sys

from plant2edge import settings

ENVIRONMENT_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ApprovalError(RuntimeError):
    """The package version cannot be approved as requested."""


def _versions(client, name: str) -> list[int]:
    return sorted(
        int(v.version) for v in client.search_model_versions(f"name='{name}'")
    )


def approve(
    client, name: str, version: str, environment: str, approved_by: str
) -> tuple[str, dict]:
    """Tag ``name`` ``version`` as approved; return the version number and record."""
    from mlflow.exceptions import MlflowException

    if not ENVIRONMENT_PATTERN.match(environment):
        raise ApprovalError(
            f"--environment {environment!r} is invalid: use 1 to 64 letters, digits, "
            "'_' or '-' (for example dev or production)."
        )
    if "'" in name:
        raise ApprovalError(f"--name {name!r} is invalid: it contains a quote.")
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise ApprovalError(
            f"No registered model named {name!r} in {settings.registry_uri()}; "
            "check --name (edge packages are named <model>_edge)."
        ) from exc
    versions = _versions(client, name)
    if version == "latest" and versions:
        version = str(versions[-1])
    if not version.isdigit() or int(version) not in versions:
        listing = ", ".join(map(str, versions)) or "none"
        raise ApprovalError(
            f"{name} has no version {version!r}. Available versions: {listing}."
        )
    record = {
        "approved_by": approved_by,
        "approved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    client.set_model_version_tag(
        name, version, f"approval.{environment}", json.dumps(record)
    )
    return version, record


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="plant2edge approve",
        description=(
            "Approve an edge package version for an environment by setting the "
            "model version tag approval.<environment>."
        ),
    )
    parser.add_argument("--name", required=True, help="registered edge package name")
    parser.add_argument("--version", required=True, help="version number or latest")
    parser.add_argument(
        "--environment", required=True, help="environment, e.g. dev or production"
    )
    parser.add_argument("--by", help="name of the approver (default: the OS user)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=settings.tracking_uri(), registry_uri=settings.registry_uri()
    )
    try:
        version, record = approve(
            client,
            args.name,
            args.version,
            args.environment,
            args.by or getpass.getuser(),
        )
    except ApprovalError as exc:
        print(f"plant2edge approve: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"Approved {args.name} version {version} for {args.environment} "
        f"(by {record['approved_by']} at {record['approved_at']})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
