"""What each workflow job does, as plain functions: read files, compute, write files atomically.

One module per stage: ``data`` (prepare, inject, split), ``models`` (the per-window models methods
need), ``train`` (every fold of a window, method and injection), ``bumphunt`` (a scan's windows),
``scan`` (gather, calibration). The Snakemake scripts in ``workflow/scripts`` parse the settings
once and call these; every stage runs and is tested without Snakemake. Heavy libraries (torch,
pyhf) are imported inside the stage that needs them: a workflow runs hundreds of short jobs.
"""

from __future__ import annotations

import fnmatch
import os

FAULT_ENV = "SLIDESCAN_FAIL_JOBS"


def check_forced_failure(path: str | os.PathLike) -> None:
    """Fail on purpose when ``$SLIDESCAN_FAIL_JOBS`` (comma-separated globs) matches ``path``.

    This is how the tests (and users rehearsing a rerun) make one fold fail for real.
    """
    for pattern in filter(None, os.environ.get(FAULT_ENV, "").split(",")):
        if fnmatch.fnmatch(str(path), pattern.strip()):
            raise RuntimeError(f"forced failure of {path}: it matches {pattern!r} in ${FAULT_ENV}")
