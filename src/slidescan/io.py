"""Atomic file writing and the HDF5 event-table format shared by every stage.

A killed job must never leave a half-written file that looks finished, so every writer goes
through :func:`atomic_path`: write to a temporary file beside the target, then rename.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The file gets the mode a plain ``open`` would give it (0666 less the umask; ``mkstemp`` makes 0600, which
    would hide a group's results from its members). A write that fails because the disk is full says so first,
    whatever the writer's own message was (torch's is "unexpected pos", h5py's spans lines).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix, dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, Exception) and _disk_full(err, path.parent):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: writing {path}") from err
        raise


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` can only set it, and jobs write from threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# less free space than this after a failed write: the disk was full, whatever the writer said
FULL_BELOW = 1 << 20


def _disk_full(err: BaseException, folder: Path) -> bool:
    if isinstance(err, OSError) and err.errno == errno.ENOSPC and str(err).startswith(os.strerror(errno.ENOSPC)):
        return False  # already says so first
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_BELOW


ARRAYS = "arrays"


def write_tables(path: str | os.PathLike, tables: dict[str, pd.DataFrame], attrs: dict | None = None,
                 arrays: dict[str, np.ndarray] | None = None) -> None:
    """Write named DataFrames of numeric columns as HDF5 groups (one dataset per column), and named arrays
    of any shape under ``arrays/`` (a model's parameters)."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
            for name, df in tables.items():
                group = f.create_group(name)
                group.attrs["columns"] = list(df.columns)
                for column in df.columns:
                    group.create_dataset(column, data=np.asarray(df[column]))
            if arrays:
                group = f.create_group(ARRAYS)
                for name, value in arrays.items():
                    group.create_dataset(name, data=np.asarray(value))


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The named arrays of a file written with ``write_tables(arrays=...)``."""
    out = {}
    with h5py.File(path, "r") as f:
        if ARRAYS not in f:
            raise KeyError(f"{path}: no arrays stored (found: {sorted(f.keys())})")
        f[ARRAYS].visititems(lambda name, item: out.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                             else None)
    return out


def read_table(path: str | os.PathLike, name: str) -> pd.DataFrame:
    """Read one table written by :func:`write_tables`, with an error that names file and key."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file does not exist")
    with h5py.File(path, "r") as f:
        if name not in f:
            raise KeyError(f"{path}: no table '{name}' (found: {sorted(f.keys())})")
        group = f[name]
        columns = [str(c) for c in group.attrs["columns"]]
        return pd.DataFrame({c: group[c][()] for c in columns})


def has_table(path: str | os.PathLike, name: str) -> bool:
    with h5py.File(path, "r") as f:
        return name in f


def read_attrs(path: str | os.PathLike) -> dict:
    with h5py.File(path, "r") as f:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}


def write_csv(path: str | os.PathLike, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def content_hash(*arrays: np.ndarray, extra: object = None) -> str:
    """Identity of a computation's inputs: a checkpoint or a finished fold is reused only for the same ones."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(repr(extra).encode())
    return h.hexdigest()
