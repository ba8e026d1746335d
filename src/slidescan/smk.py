"""Helpers for the thin Snakemake scripts: logging to the job's log file."""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path


@contextlib.contextmanager
def job_log(snakemake):
    """Send the job's prints and any traceback to its ``log`` file (and keep the exit code)."""
    if not snakemake.log:
        yield print
        return
    path = Path(snakemake.log[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", buffering=1) as handle:
        def log(message: str) -> None:
            print(message, file=handle, flush=True)

        with contextlib.redirect_stdout(handle):
            try:
                yield log
            except BaseException:
                traceback.print_exc(file=handle)
                traceback.print_exc(file=sys.stderr)
                raise
