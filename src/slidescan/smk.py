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

    return PseudoExperiment.from_wildcards(snakemake.wildcards)


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


def local_scheduling(workflow) -> bool:
    """Switch Snakemake's job rate limiter off in a local run: the Snakefile's ``onstart``, which Snakemake calls after
    it has made the scheduler and before the scheduler's first round. Returns whether it did.

    Why: for its limit on job starts (``--max-jobs-per-timespan``, default 100/1s) Snakemake 9 (measured with 9.27)
    arms a one-second timer at the end of every scheduling round that leaves a ready job waiting, and the timer wakes
    the scheduler for another round. A finished job wakes it too, so each job that ends while others wait for a core
    adds one more timer that re-arms itself every second: after n finished jobs the head runs about n rounds a
    second, each one statting the inputs of every waiting job and recomputing its params. A toy workflow of 150
    jobs of 0.3 s on one core ran 3,581 rounds instead of 151; on the 265-job scan of ``benchmarks/head_overhead.py``
    the head used 13 % of the jobs' CPU time (``docs/benchmarks.md``; upstream: snakemake pull request 3744).
    Neither the command line nor a profile can turn the limiter off (the option's parser always makes one), and a
    local run has nothing to limit: a job start is a process on this machine. Without it a round happens when a job
    ends, as before Snakemake 8.17. A cluster run keeps it: there it spaces out the submissions to the batch
    system."""
    scheduler = getattr(workflow, "scheduler", None)
    if not workflow.local_exec or getattr(scheduler, "job_rate_limiter", None) is None:
        return False
    scheduler.job_rate_limiter = None
    return True
