"""One checkpoint helper for every trained model: Lightning's layout, a fingerprint, atomic writes.

A checkpoint stores a fingerprint of the data and settings it was trained with, and is resumed
only into a training with the same fingerprint: a checkpoint from a changed config or another
split starts a fresh training instead of a wrong model. Torch checkpoints hold tensors, numbers,
strings and lists only and are read with ``weights_only=True``, so loading one runs no code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Callable

from . import joblog
from .io import atomic_path


def _torch_read(path: Path, map_location):
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def _torch_write(state: dict, tmp: Path) -> None:
    import torch

    torch.save(state, tmp)


def _pickle_read(path: Path, map_location):
    with open(path, "rb") as handle:
        return pickle.load(handle)


def _pickle_write(state: dict, tmp: Path) -> None:
    with open(tmp, "wb") as handle:
        pickle.dump(state, handle)


FORMATS = {"torch": (_torch_read, _torch_write), "pickle": (_pickle_read, _pickle_write)}


def load(path: str | os.PathLike | None, fingerprint: str, log: Callable[[str], None] = print,
         map_location=None, fmt: str = "torch") -> dict | None:
    """The saved state when ``path`` holds a checkpoint of this very training, else None (logged)."""
    if not path or not Path(path).exists():
        return None
    state = FORMATS[fmt][0](Path(path), map_location)
    if not isinstance(state, dict) or state.get("slidescan", {}).get("fingerprint") != fingerprint:
        log(joblog.foreign_checkpoint(path))
        return None
    return state


def save(path: str | os.PathLike, fingerprint: str, own: dict, epoch: int = 0, state_dict: dict | None = None,
         optimizer=None, global_step: int = 0, fmt: str = "torch") -> None:
    """Lightning's checkpoint layout (state_dict, optimizer_states, epoch, global_step) plus ``own`` state."""
    state = {"epoch": epoch, "global_step": global_step, "state_dict": state_dict or {},
             "optimizer_states": [optimizer.state_dict()] if optimizer is not None else [], "lr_schedulers": [],
             "slidescan": {"fingerprint": fingerprint, **own}}
    with atomic_path(path) as tmp:
        FORMATS[fmt][1](state, tmp)
