"""What the Snakemake head process costs on a local scan, beside the jobs it runs, and where its time goes.

    python benchmarks/head_overhead.py [--configfile config/head_overhead.yaml] [--py-spy FILE]
                                       [--snakemake-args "..."] [--label NAME] [--json FILE] [--source DIR]

    e.g. python benchmarks/head_overhead.py --configfile config/head_overhead.yaml --py-spy /tmp/head.raw
         python benchmarks/head_overhead.py --configfile config/config.yaml        (the README's default scan)

Copies the workflow (the Snakefile, workflow/, config/, profiles/ of the working tree, or of ``--source``) to a
temporary directory and runs the scan there with ``profiles/local`` on 2 cores, as ``slidescan run`` does (no
report). The head runs under a small launcher that records its own CPU time (``getrusage(RUSAGE_SELF)`` at exit:
every thread of the head, none of its jobs); the jobs' CPU time is everything the head's process tree used minus
that (``wait4`` of the launcher counts every waited-for descendant). CPU time, unlike wall time, hardly depends
on what else the machine does. ``--py-spy FILE`` samples the head (only its busy threads: py-spy leaves idle
ones out) and prints where its time went, by part: a share of the samples, and py-spy samples every busy thread,
so a part that runs in many threads at once (the rate limiter's timers) weighs more than its CPU time.
``selection_rounds`` counts the lines "Select jobs to execute..." of Snakemake's log, which it writes only after a
round that started a job; with ``--snakemake-args --verbose`` ``rounds`` counts every scheduling round ("Ready
jobs").

``config/head_overhead.yaml``: the shape of the scan measured in issue 34 (6 windows x 6 methods x 3 injections
x 3 seeds, 265 jobs), with cheap training so that it runs in about 15 minutes. Cheaper jobs make the head's
share larger, so the figure is an upper bound for the same DAG with heavier training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from dag import breakdown  # noqa: E402

# the head under this launcher: its own CPU time (every thread, no child) is written at exit
LAUNCHER = r"""
import atexit, json, os, resource, sys

def _usage():
    u = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["SLIDESCAN_HEAD_USAGE"], "w") as f:
        json.dump({"user_s": u.ru_utime, "sys_s": u.ru_stime, "max_rss_mb": u.ru_maxrss / 1024}, f)

atexit.register(_usage)
sys.argv = ["snakemake", *sys.argv[1:]]
from snakemake.cli import main
main()
"""

# where a running head's time goes: each py-spy sample to the first part whose frames match
PARTS = [
    ("the job rate limiter's timers: a thread started every round, each re-armed every second (slidescan.smk)",
     ["_schedule_reevalutation (snakemake/", "Timer.run (threading"]),
    ("job selection: stat and size of every ready job's input files (update_input_sizes)",
     ["update_input_sizes (snakemake/"]),
    ("job selection: the solver (ILP or greedy)", ["_job_selector (snakemake/", "select_jobs (snakemake/",
                                                   "job_selector_ilp (snakemake/", "job_selector_greedy"]),
    ("job selection: params and resources of every ready job recomputed (reset_params_and_resources)",
     ["reset_params_and_resources (snakemake/"]),
    ("job selection: remaining jobs (every needrun job, every round)", ["remaining_jobs (snakemake/"]),
    ("finishing jobs: outputs checked, DAG updated, newly ready jobs", ["_finish_jobs (snakemake/",
                                                                       "handle_job_success", "finish (snakemake/dag"]),
    ("starting jobs: the job's command line and process", ["run_jobs (snakemake/", "run_job (snakemake",
                                                          "spawn_job", "format_job_exec", "get_job_exec_"]),
    ("our code (Snakefile, rules' functions, slidescan)", "OURS"),
    ("start-up: parsing, DAG", ["include (snakemake/workflow.py", "build_dag", "init (snakemake/dag.py",
                                "update_ (snakemake/dag.py", "postprocess (snakemake/dag.py"]),
    ("logging and progress", ["log_info (snakemake/", "handle (snakemake/logging", "emit (", "progress"]),
    ("imports and plugin loading", ["_find_and_load (<frozen", "get_plugins ("]),
    ("no Python frame (interpreter start and exit)", "EMPTY"),
]


def copy_workflow(source: Path, configfile: Path) -> Path:
    work = Path(tempfile.mkdtemp(prefix="head-overhead-"))
    for item in ("Snakefile", "workflow", "config", "profiles"):
        (shutil.copytree if (source / item).is_dir() else shutil.copy)(source / item, work / item)
    if configfile.name != "config.yaml":  # the scan's config is the default the Snakefile reads
        shutil.copy(source / configfile, work / "config" / "config.yaml")
    return work


def measure(work: Path, extra: list[str], spy: Path | None) -> dict:
    usage_file = work / "head_usage.json"
    env = {**os.environ, "SLIDESCAN_HEAD_USAGE": str(usage_file), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", LAUNCHER, "--profile", "profiles/local", "--cores", "2", *extra]
    log = work / "snakemake.log"
    start = time.perf_counter()
    with open(log, "w") as handle:
        head = subprocess.Popen(command, cwd=work, stdout=handle, stderr=subprocess.STDOUT, env=env)
        recorder = None
        if spy:
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            recorder = subprocess.Popen([py_spy, "record", "-r", "20", "-f", "raw", "-o", str(spy), "--pid",
                                         str(head.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(head.pid, 0)
        wall = time.perf_counter() - start
        if recorder:
            recorder.wait(timeout=120)
    rc = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if rc != 0:
        raise SystemExit(f"snakemake failed ({rc}):\n{text[-3000:]}")
    own = json.loads(usage_file.read_text())
    head_cpu = own["user_s"] + own["sys_s"]
    total = usage.ru_utime + usage.ru_stime
    done = re.findall(r"^(\d+) of (\d+) steps \(100%\) done", text, re.M)
    return {"wall_s": round(wall, 1), "head_cpu_s": round(head_cpu, 1), "jobs_cpu_s": round(total - head_cpu, 1),
            "head_share_of_jobs": round(head_cpu / (total - head_cpu), 4), "head_max_rss_mb": round(own["max_rss_mb"]),
            "jobs": int(done[-1][1]) if done else None,
            "selection_rounds": len(re.findall(r"^Select jobs to execute\.\.\.$", text, re.M)),
            "rounds": len(re.findall(r"^Ready jobs", text, re.M)) or None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", type=Path, default=Path("config/head_overhead.yaml"),
                        help="the scan, relative to the checkout (default: config/head_overhead.yaml)")
    parser.add_argument("--snakemake-args", default="", help="more Snakemake options, e.g. \"--scheduler greedy\"")
    parser.add_argument("--source", type=Path, default=REPO, help="take the workflow from this checkout")
    parser.add_argument("--py-spy", type=Path, help="sample the head with py-spy (raw) into this file")
    parser.add_argument("--label", default="", help="a name for this run in the JSON line")
    parser.add_argument("--json", type=Path, help="append the result as a JSON line to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary checkout")
    args = parser.parse_args()
    work = copy_workflow(args.source.resolve(), args.configfile)
    load = os.getloadavg()[0]
    result = measure(work, shlex.split(args.snakemake_args), args.py_spy)
    entry = {"label": args.label, "config": str(args.configfile), "snakemake_args": args.snakemake_args,
             "source": str(args.source), "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.node(),
             "cores": os.cpu_count(), "load_before": round(load, 2), **result}
    print(json.dumps(entry))
    if args.json:
        with open(args.json, "a") as handle:
            handle.write(json.dumps(entry) + "\n")
    if args.py_spy:
        breakdown(args.py_spy, result["head_cpu_s"], parts=PARTS)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
