"""The lines of job and fold logs that ``slidescan status`` reads back: written and parsed here only.

A training fold's log says which checkpoint it trains into, how many folds (or flows) share its batched model
and one line per epoch with its seconds; a traceback marks a failure. Status and the jobs table
learn a job's state and training time from these lines, on a login node, while the scan runs.
"""

from __future__ import annotations

import re
import threading
import traceback
from contextlib import contextmanager
from pathlib import Path

_ATTEMPT = "=== attempt "
_CHECKPOINT = re.compile(r"^checkpoint: (.+)$", re.M)
_BATCH = re.compile(r"^(\d+) (?:folds|flows) as one batched model", re.M)
# "epoch 3/8: ... (1.20 s)" of a classifier, "flow epoch 3/8: ..." of a density model
_EPOCH = re.compile(r"^(?:[a-z]+ )?epoch \d+/\d+:.*\(([\d.]+) s\)$", re.M)
_EPOCH_START = ("epoch ", "flow epoch ", "model epoch ")


def attempt() -> str:
    """The first line of each attempt in a fold's log: a log keeps every attempt, status reads the last."""
    import time

    return f"{_ATTEMPT}{time.strftime('%Y-%m-%d %H:%M:%S')} ==="


def last_attempt(text: str) -> str:
    """The part of a log written by its last attempt (all of it for a log without attempt lines)."""
    cut = text.rfind(_ATTEMPT)
    return text if cut < 0 else text[cut:]


def checkpoint(path) -> str:
    return f"checkpoint: {path}"


def batch(n_folds: int, n_members: int, what: str, unit: str = "folds") -> str:
    """Said once per batch in every log whose epoch lines time the whole batched model (``unit``: folds, flows)."""
    return f"{n_folds} {unit} as one batched model of {n_members} members ({what})"


def epoch(epoch: int, epochs: int, text: str, seconds: float, prefix: str = "") -> str:
    return f"{prefix}epoch {epoch}/{epochs}: {text} ({seconds:.2f} s)"


def resumed(path, epoch: int, what: str = "") -> str:
    return f"resumed {what + ' ' if what else ''}from checkpoint {path} after epoch {epoch}"


def foreign_checkpoint(path) -> str:
    return f"checkpoint {path} belongs to other data or settings; starting fresh"


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def logged_checkpoint(log: Path) -> Path | None:
    """The checkpoint a fold's log names (in its last attempt); folds trained together share one."""
    found = _CHECKPOINT.findall(last_attempt(read(log)))
    return Path(found[-1]) if found else None


def epoch_seconds(text: str) -> list[float]:
    return [float(s) for s in _EPOCH.findall(text)]


def shared_by(text: str) -> int:
    """How many folds or flows shared each epoch of the last attempt (1 when trained alone): a log's epoch
    lines time the whole batched model, so its own share is their seconds over this number."""
    found = _BATCH.findall(last_attempt(text))
    return int(found[-1]) if found else 1


def failure(text: str) -> str | None:
    """The last error line of the last attempt of a log with a traceback, or None when it has none."""
    lines = last_attempt(text).strip().splitlines()
    if not any(line.startswith("Traceback") for line in lines):
        return None
    errors = [line for line in lines if line and not line.startswith(" ") and ":" in line
              and not line.startswith(("Traceback", _ATTEMPT, *_EPOCH_START))]
    return errors[-1] if errors else "see log"


def logged_epochs(text: str) -> int:
    """Epoch lines of the last attempt (a resumed attempt starts after its checkpoint's epoch)."""
    return sum(line.startswith(_EPOCH_START) for line in last_attempt(text).splitlines())


class UnitLog:
    """The own log of one unit of a job (a training fold, a model's window and pseudo-experiment), called with a
    line. Every attempt appends (:meth:`started` writes its first line), so a resumed unit keeps the lines of the
    attempts before and ``slidescan status`` reads the last. Each line is written and closed at once: units that
    train in device threads write their own logs side by side."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def started(self) -> "UnitLog":
        self(attempt())
        return self

    def __call__(self, message: str) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as handle:
                print(message, file=handle)


class Failures(dict):
    """The units of a job that failed, each with its reason. A unit's error is recorded (with its traceback in the
    unit's log), not raised: the job's other units still train and are written, and the job fails at the end
    naming these (the training stage and the model stage alike)."""

    def add(self, units, err: BaseException, logs=()) -> None:
        for log in logs:
            log(traceback.format_exc().rstrip())
        for unit in units:
            self[unit] = f"{type(err).__name__}: {err}"

    @contextmanager
    def record(self, units, logs=()):
        """Record an error of the block as a failure of ``units`` (a list), its traceback in each of ``logs``."""
        try:
            yield
        except Exception as err:
            self.add(units, err, logs)
