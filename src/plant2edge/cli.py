"""The ``plant2edge`` command: one subcommand per tool, each in its own module."""

from __future__ import annotations

import importlib
import sys

# Subcommand name -> (module, one-line help). Each module has main(argv) -> int.
COMMANDS = {
    "run": ("plant2edge.runner", "run a pipeline YAML on this machine"),
    "demo": ("plant2edge.demo", "run all pipelines from raw data to the edge"),
    "validate": ("plant2edge.validate", "check component and pipeline YAML offline"),
    "workspace": ("plant2edge.workspace", "register components or submit pipelines"),
    "connect-device": (
        "plant2edge.connect",
        "create an AI Model Manager device and its connection file",
    ),
    "stack": ("plant2edge.localstack.cli", "start, stop or inspect the local stand-ins"),
    "approve": ("plant2edge.approve", "approve an edge package for an environment"),
}


def _usage() -> str:
    lines = ["usage: plant2edge COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines.append("\nRun 'plant2edge COMMAND --help' for the options of one command.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"plant2edge: unknown command {name!r}.\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
