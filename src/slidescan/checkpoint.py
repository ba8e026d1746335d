"""One checkpoint helper for every trained model: Lightning's layout, a fingerprint, atomic writes.

A checkpoint stores a fingerprint of the data and settings it was trained with, and is resumed
only into a training with the same fingerprint: a checkpoint from a changed config or another
split starts a fresh training instead of a wrong model. Loading one runs no code: torch checkpoints
hold tensors, numbers, strings and lists only and are read with ``weights_only=True``; the trees'
pickles carry an HMAC with a key of the user's (``~/.config/slidescan/checkpoint.key``, or the file
``$SLIDESCAN_CHECKPOINT_KEY`` names), and one that this key did not sign (a results directory
handed over by someone else, an altered file) is not unpickled but trained afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Callable

from . import joblog
from .io import atomic_path

KEY_ENV = "SLIDESCAN_CHECKPOINT_KEY"
_SIGNED = b"slidescan-signed-pickle-1 "


class UnsignedCheckpoint(ValueError):
    """A pickle checkpoint without this user's signature: it is never unpickled."""


def key_file() -> Path:
    return Path(os.environ.get(KEY_ENV) or Path.home() / ".config" / "slidescan" / "checkpoint.key")


def _key() -> bytes:
    path = key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two jobs starting at once agree on one key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        except FileExistsError:
            pass
    return path.read_bytes()


def _torch_read(path: Path, map_location):
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def _torch_write(state: dict, tmp: Path) -> None:
    import torch

    torch.save(state, tmp)


def _pickle_read(path: Path, map_location):
    raw = Path(path).read_bytes()
    head, _, body = raw.partition(b"\n")
    if not head.startswith(_SIGNED) or not hmac.compare_digest(
            head[len(_SIGNED):], hmac.new(_key(), body, hashlib.sha256).hexdigest().encode()):
        raise UnsignedCheckpoint(f"checkpoint {path} is not signed by this user's slidescan key ({key_file()}): "
                                 "written elsewhere or altered; not loaded, training afresh")
    return pickle.loads(body)


def _pickle_write(state: dict, tmp: Path) -> None:
    body = pickle.dumps(state)
    Path(tmp).write_bytes(_SIGNED + hmac.new(_key(), body, hashlib.sha256).hexdigest().encode() + b"\n" + body)


FORMATS = {"torch": (_torch_read, _torch_write), "pickle": (_pickle_read, _pickle_write)}


def part(checkpoint: str | os.PathLike | None, name: str) -> Path | None:
    """The checkpoint of one part of a job's model (a member trained alone, a stage of a method that trains several
    networks one after another): beside the job's, named after it and ``name``; None without a job checkpoint."""
    if not checkpoint:
        return None
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}-{name}{checkpoint.suffix}")


def load(path: str | os.PathLike | None, fingerprint: str, log: Callable[[str], None] = print,
         map_location=None, fmt: str = "torch") -> dict | None:
    """The saved state when ``path`` holds a checkpoint of this very training, else None (logged)."""
    if not path or not Path(path).exists():
        return None
    try:
        state = FORMATS[fmt][0](Path(path), map_location)
    except UnsignedCheckpoint as err:
        log(str(err))
        return None
    except Exception as err:  # a truncated or foreign file: train afresh rather than fail or trust it
        log(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); training afresh")
        return None
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
