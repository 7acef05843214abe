"""``plant2edge stack start|stop|status``: run the local stand-ins in the background."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from plant2edge.connect import ConnectError
from plant2edge.localstack.broker import DEVICE_PORT
from plant2edge.localstack.device import MODES
from plant2edge.localstack.paths import STATE_DIR_ENV, default_state_dir
from plant2edge.localstack.processes import StackError
from plant2edge.localstack.stack import attach_stack, start_stack, stop_stack


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="plant2edge stack",
        description=(
            "Start, stop or inspect the local stand-ins: Mosquitto on "
            "127.0.0.1:8883 (IoT Hub's device topics over TLS), Azurite blob "
            "storage and simulated AI Model Manager devices."
        ),
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"state folder (default ${STATE_DIR_ENV} or <plant2edge home>/localstack)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start the broker and Azurite")
    start.add_argument(
        "--device-id",
        action="append",
        default=[],
        help="also provision (once) and start a simulated AI Model Manager; repeatable",
    )
    start.add_argument("--device-mode", choices=MODES, default="normal")
    start.add_argument(
        "--mqtt-port",
        type=int,
        default=DEVICE_PORT,
        help=f"broker port (default {DEVICE_PORT}, the only port azure-iot-device "
        "devices connect to)",
    )
    start.add_argument(
        "--blob-port", type=int, help="Azurite port (default: a free one)"
    )
    commands.add_parser("stop", help="stop devices, Azurite and the broker by PID")
    commands.add_parser("status", help="print PIDs and endpoints as JSON")
    return parser.parse_args(argv)


def start(args: argparse.Namespace, state_dir: Path) -> int:
    if args.device_id and args.mqtt_port != DEVICE_PORT:
        raise StackError(
            f"Simulated devices connect to port {DEVICE_PORT} only (azure-iot-device "
            f"fixes it); drop --device-id or --mqtt-port {args.mqtt_port}."
        )
    stack = start_stack(state_dir, mqtt_port=args.mqtt_port, blob_port=args.blob_port)
    try:
        for device_id in args.device_id:
            connection = state_dir / "devices" / device_id / "connection.json"
            if not connection.exists():
                stack.provision_device(device_id, connection)
            stack.start_device(connection, mode=args.device_mode)
    except (StackError, ConnectError):
        stack.stop()
        raise
    print(f"Local stack running; state in {state_dir}")
    print(f"  MQTT (TLS, client certificates): 127.0.0.1:{stack.mqtt.port}")
    print(f"  Blob storage:                    {stack.blob.endpoint}")
    for device_id in args.device_id:
        print(f"  Simulated AI Model Manager:      {device_id}")
    print("Stop it with 'plant2edge stack stop'.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    state_dir = (args.state_dir or default_state_dir()).resolve()
    try:
        if args.command == "start":
            return start(args, state_dir)
        if args.command == "stop":
            stopped = stop_stack(state_dir)
            print(
                f"Stopped: {', '.join(stopped)}" if stopped else "Nothing was running."
            )
            return 0
        status = attach_stack(state_dir).status()
        print(json.dumps(status, indent=2))
        return (
            0 if status["mosquitto"]["running"] and status["azurite"]["running"] else 1
        )
    except (StackError, ConnectError) as exc:
        print(f"plant2edge stack {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
