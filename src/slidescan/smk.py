"""Helpers for the thin Snakemake scripts: the job's settings (parsed once), its layout, its log."""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path


def settings(snakemake):
    """The scan's typed settings, parsed once at the job's boundary. The Snakefile validated the config and
    filled its defaults (in the head, and again in a cluster job that re-parses it): only plugins load here."""
    from .settings import ScanSettings

    return ScanSettings.from_config(snakemake.config, validated=True)


def known_signature(function):
    """``function`` with its signature attached, for a rule's input, params, threads or resource function.

    Snakemake calls ``inspect.signature`` on such a function at every call, that is for every job (and a
    resource more than once); ``inspect.signature`` returns a function's ``__signature__`` as it is, so with
    it attached that is an attribute lookup. The function and its arguments stay the same."""
    import inspect

    function.__signature__ = inspect.signature(function)
    return function


def experiment(snakemake):
    from .layout import PseudoExperiment

    return PseudoExperiment(int(snakemake.wildcards.injection), int(snakemake.wildcards.seed))


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
