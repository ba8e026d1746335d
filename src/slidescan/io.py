"""Atomic file writing and the HDF5 event-table format shared by every stage.

A killed job must never leave a half-written file that looks finished, so every writer goes
through :func:`atomic_path`: write to a temporary file beside the target, then rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix if suffix is not None else path.suffix, dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
