"""The `feedback-pipeline run` processes executing stages on this host, as marker files in DAGSTER_HOME.

A `run` that executes stages holds a marker (host, pid, process start time) until it ends. One
killed meanwhile leaves its marker behind, and may leave Dagster runs STARTED, or a stage's work
undone where only Dagster knows it is due (label quality compares fingerprints with the last
materialization). `run` answers "nothing pending" from the lake alone, without starting Dagster,
only when no such marker is left on this host; otherwise it takes the path that marks the dead
process's runs failed and asks every stage, Dagster included.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

FOLDER = "live-runs"


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None where unknown:
    with the pid, it names a process even after its pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, start: str | None) -> bool:
    """Whether the process `pid` that started at `start` (None: any) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not start or process_start(pid) in (None, start)


@contextlib.contextmanager
def holding(dagster_home: str) -> Iterator[Path]:
    """Hold this process's marker while the block runs (it is left behind only if the process dies)."""
    folder = Path(dagster_home) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    pid, host = os.getpid(), socket.gethostname()
    marker = folder / f"{host}-{pid}.json"
    temporary = folder / f".{marker.name}.tmp"
    temporary.write_text(json.dumps({"host": host, "pid": pid, "start": process_start(pid)}))
    os.replace(temporary, marker)
    try:
        yield marker
    finally:
        marker.unlink(missing_ok=True)


def dead(dagster_home: str) -> list[Path]:
    """The markers of this host's `run` processes that died holding them."""
    folder = Path(dagster_home) / FOLDER
    if not folder.is_dir():
        return []
    host, found = socket.gethostname(), []
    for marker in sorted(folder.glob("*.json")):
        try:
            held = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # removed meanwhile, or being replaced
        if held.get("host") == host and not alive(int(held["pid"]), held.get("start")):
            found.append(marker)
    return found


def clear(markers: list[Path]) -> None:
    """Remove markers whose runs were judged (see `dead`)."""
    for marker in markers:
        marker.unlink(missing_ok=True)
