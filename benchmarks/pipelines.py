"""Time the data asset and training pipelines end to end through the local runner.

Usage: .venv/bin/python benchmarks/pipelines.py [--data FILE] [--repeat N]

Each repetition uses a fresh local workspace (MLflow store, data assets), so
every run includes creating the SQLite store. Prints a Markdown table of the
time per step and per pipeline, and the machine it ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from plant2edge import settings


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def run_once(data: Path) -> dict[str, float]:
    from plant2edge.runner import run_pipeline

    timings: dict[str, float] = {}
    pipelines = settings.repo_root() / "pipelines"
    overrides = {
        "data_asset": {"inputs.raw_data": str(data)},
        "training": {},
    }
    with tempfile.TemporaryDirectory(prefix="p2e-bench-") as home:
        os.environ[settings.HOME_ENV] = home
        total_started = time.perf_counter()
        for name, values in overrides.items():
            started = time.perf_counter()
            result = run_pipeline(pipelines / f"{name}.yaml", overrides=values)
            result.raise_for_status()
            timings[f"{name} (pipeline)"] = time.perf_counter() - started
            for step in result.steps.values():
                timings[f"{name}.{step.name}"] = step.duration_s or 0.0
        timings["both pipelines"] = time.perf_counter() - total_started
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = settings.datasets_dir() / "state-identifier" / "si-sample.parquet"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"Data file not found: {args.data}; pass --data FILE", file=sys.stderr)
        return 2

    runs = []
    for index in range(args.repeat):
        print(f"run {index + 1} of {args.repeat} ...", file=sys.stderr)
        runs.append(run_once(args.data.resolve()))

    print(f"Machine: {machine()}")
    print(f"Command: .venv/bin/python benchmarks/pipelines.py --repeat {args.repeat}")
    print()
    print("| step | median s | min s | max s |")
    print("|---|---:|---:|---:|")
    for key in runs[0]:
        values = [run[key] for run in runs]
        print(
            f"| {key} | {statistics.median(values):.1f} | {min(values):.1f} "
            f"| {max(values):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
