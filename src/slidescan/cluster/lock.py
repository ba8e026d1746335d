"""Snakemake's lock of a working directory: held by a running head, or stale after a head was killed.

A head killed by SIGKILL, an out-of-memory kill or a lost node leaves ``.snakemake/locks/`` behind,
and the next run fails with ``LockException``. The lock is stale when no head that could hold it is
alive: none of this host's processes runs Snakemake in the directory, the head ``slidescan run``
recorded (host and pid) is gone, and a head launched on SLURM (``slidescan launch``) has ended.
A head on another host than the one asking is never declared dead: the lock is then "held".
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_path

LOCKS = Path(".snakemake/locks")
RECORD = "local_head.json"  # in the scan's launch/ folder, beside launch's head.json


@dataclass
class LockState:
    state: str  # none | held | stale
    text: str


def lock_files(workdir: Path) -> list[Path]:
    folder = Path(workdir) / LOCKS
    return sorted(folder.glob("*")) if folder.is_dir() else []


def snakemake_processes(workdir: Path) -> list[str]:
    """This host's processes that run Snakemake in ``workdir`` (psutil, a Snakemake dependency)."""
    import psutil

    here = Path(workdir).resolve()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.pid == os.getpid() or not any("snakemake" in part for part in cmdline[:3]):
                continue
            if proc.info["cwd"] and Path(proc.info["cwd"]).resolve() == here and "--unlock" not in cmdline:
                found.append(f"pid {proc.pid}: {' '.join(cmdline)[:120]}")
        except (psutil.Error, OSError):
            continue
    return found


def record_head(launch_dir: Path) -> Path:
    """Note that a head (this process's Snakemake child) runs here, for ``lock_state`` on any host."""
    path = Path(launch_dir) / RECORD
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))
    return path


def clear_head(launch_dir: Path) -> None:
    (Path(launch_dir) / RECORD).unlink(missing_ok=True)


def _recorded_head(launch_dir: Path) -> str | None:
    """A description of the recorded head if it may still run, else None."""
    import psutil

    path = Path(launch_dir) / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("host") != socket.gethostname():
        return f"slidescan run on host {record.get('host')} (pid {record.get('pid')}), which this host cannot check"
    return f"slidescan run, pid {record['pid']}" if psutil.pid_exists(int(record.get("pid", -1))) else None


def _launched_head(launch_dir: Path) -> str | None:
    from .launch import RECORD as HEAD, slurm_state

    path = Path(launch_dir) / HEAD
    try:
        job_id = json.loads(path.read_text())["job_id"]
    except (OSError, ValueError, KeyError):
        return None
    state = slurm_state(job_id)
    return f"the launched head, SLURM job {job_id} ({state})" if state in ("PENDING", "RUNNING", "CONFIGURING",
                                                                            "COMPLETING", "REQUEUED") else None


def lock_state(workdir: Path, launch_dir: Path) -> LockState:
    locks = lock_files(workdir)
    if not locks:
        return LockState("none", "")
    holders = snakemake_processes(workdir)
    for head in (_recorded_head(launch_dir), _launched_head(launch_dir)):
        if head:
            holders.append(head)
    where = Path(workdir) / LOCKS
    if holders:
        return LockState("held", f"the directory is locked ({where}) by a running head: {'; '.join(holders)}")
    return LockState("stale", f"stale Snakemake lock ({where}): the run that held it is gone (killed, out of memory "
                              "or its node lost); `slidescan run` clears it before it starts, or run "
                              "`slidescan unlock`")
