"""Snakemake's lock of a working directory: held by a running head, or stale after a head was killed.

A head killed by SIGKILL, an out-of-memory kill or a lost node leaves ``.snakemake/locks/`` behind,
and the next run fails with ``LockException``. The lock is stale when no head that could hold it is
alive: none of this host's processes runs Snakemake in the directory, the head ``slidescan run``
recorded (host and pid) is gone, and a head launched on SLURM (``slidescan launch``) has ended.
A head on another host than the one asking is never declared dead: the lock is then "held".
"""

from __future__ import annotations

import contextlib
import fcntl
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
    """Remove the record of this process's head, never another's (a refused second run must not erase it)."""
    path = Path(launch_dir) / RECORD
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if record == {"host": socket.gethostname(), "pid": os.getpid()}:
        path.unlink(missing_ok=True)


HEAD_LOCK = "head.lock"  # in the scan's launch/ folder: held by the `slidescan run` of the scan while it runs


class HeadRunning(RuntimeError):
    """Another ``slidescan run`` of the same scan holds its head lock."""


@contextlib.contextmanager
def head_lock(launch_dir: Path):
    """Held by a ``slidescan run`` of a scan from before it reads or writes anything of the scan (its settings
    record, the head record) to its end, so a second run of the same scan is refused before it changes anything.

    An ``flock``: the kernel releases it when the process dies, however it dies, so it can never be stale (unlike
    Snakemake's lock files, which a SIGKILL leaves behind). On a filesystem without locks (some Lustre mounts) it is
    skipped and Snakemake's own lock is the only guard.
    """
    path = Path(launch_dir) / HEAD_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        holder = _recorded_head(launch_dir) or "another slidescan run of this scan"
        raise HeadRunning(f"scan in {Path(launch_dir).parent} is being run by {holder}; nothing was changed") from None
    except OSError:  # no locks on this filesystem
        os.close(fd)
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


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
