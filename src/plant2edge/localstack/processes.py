"""Start background servers, record their PIDs, and stop them by PID only."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)


class StackError(RuntimeError):
    """A local stand-in failed to start, stop or respond."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def spawn(
    argv: list[str],
    *,
    log_path: Path,
    pid_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``argv`` in its own session with output appended to ``log_path``.

    The process outlives the caller (``plant2edge stack start`` exits while the
    servers keep running), so it is stopped later through ``pid_path``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    pid_path.write_text(f"{process.pid}\n")
    return process


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def is_running(pid: int | None, marker: str, cwd: Path | None = None) -> bool:
    """Return whether ``pid`` is alive and its command line contains ``marker``.

    The marker (a state-folder path or port of this stack) keeps a recycled PID
    of some other program from being taken for ours. A server whose command
    line names no folder of this stack is also checked by its working folder
    ``cwd``.
    """
    if pid is None:
        return False
    _reap(pid)
    if _is_zombie(pid):
        return False
    if marker not in _cmdline(pid):
        return False
    return cwd is None or _cwd(pid) == cwd.resolve()


def stop_pid(
    pid_path: Path,
    marker: str,
    *,
    name: str,
    timeout: float = 10.0,
    cwd: Path | None = None,
) -> bool:
    """Stop the process recorded in ``pid_path`` with SIGTERM, then SIGKILL.

    Return False when no such process was running. The PID file is removed.
    """
    pid = read_pid(pid_path)
    if not is_running(pid, marker, cwd):
        if pid is not None and not _is_zombie(pid):
            logger.warning(
                "Left pid %d from %s running: it is not this stack's %s",
                pid,
                pid_path,
                name,
            )
        pid_path.unlink(missing_ok=True)
        return False
    logger.info("Stopping %s (pid %d)", name, pid)
    os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not is_running(pid, marker, cwd), timeout):
        logger.warning("%s (pid %d) ignored SIGTERM; sending SIGKILL", name, pid)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not is_running(pid, marker, cwd), timeout)
    pid_path.unlink(missing_ok=True)
    return True


def kill_pid(
    pid_path: Path, marker: str, *, name: str, cwd: Path | None = None
) -> bool:
    """Kill the process in ``pid_path`` with SIGKILL, as a crash would."""
    pid = read_pid(pid_path)
    if not is_running(pid, marker, cwd):
        return False
    logger.info("Killing %s (pid %d) with SIGKILL", name, pid)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not is_running(pid, marker, cwd), 10.0)
    pid_path.unlink(missing_ok=True)
    return True


def wait_until(
    condition: Callable[[], bool], timeout: float, step: float = 0.02
) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


def log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])
