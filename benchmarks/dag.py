"""How long Snakemake takes to build (and dry-run) the DAG of a cluster-sized scan, and where the time goes.

    python benchmarks/dag.py [--shape lhco|20k] [--seeds N] [--windows N] [--methods a,b] [--injections 0,100]
                             [--variant NAME ...] [--quiet] [--slurm-profile] [--scheduler greedy]
                             [--scheduler-subsample N] [--repeat 2] [--json FILE] [--source DIR]
                             [--py-spy FILE [--py-spy-bin PATH]] [--cprofile FILE] [--select]
    python benchmarks/dag.py --breakdown FILE     # where the time of a recorded py-spy profile went

    e.g. python benchmarks/dag.py --shape 20k --variant all --repeat 2     (about 40 min on 2 cores)

Copies the workflow (the working tree's Snakefile, workflow/, config/, profiles/) to a temporary directory and
times ``snakemake -n`` on a scan that overlays ``config/synthetic_lhco_size.yaml``. Nothing is trained.

Shapes (a training job is one (window, method, injection) and serves every seed):

- ``lhco`` (default): that config with ``--seeds`` seeds (8: 595 training jobs, 23,800 fold trainings);
- ``20k``: with ``config/dag_20k.yaml`` too: 100 windows (SR lower edges every 20 GeV from 3.00 to
  4.98 TeV) x 10 methods x 20 injections = 20,000 training jobs, 5 seeds, 31,420 jobs in all.

``--windows``/``--methods``/``--injections``/``--seeds`` change a shape (``--windows N`` keeps its first
window and step). Variants (``--variant``, repeatable, or ``--variant all``): ``plain`` (``snakemake -n``,
every job printed), ``quiet`` (``--quiet rules``), ``slurm`` (``--profile profiles/slurm``, as a cluster user
runs it), ``slurm-quiet``, ``slurm-quiet-greedy`` (``--scheduler greedy``), ``slurm-quiet-subsample``
(``--scheduler-subsample 100``) and ``parse`` (``--list-rules``: start-up and Snakefile parsing only).
Without ``--variant``, ``--quiet``/``--slurm-profile``/``--scheduler``/``--scheduler-subsample`` build one.
With ``--repeat``, the rounds go through the variants in turn, so a load that comes and goes hits them alike.

Every run reports wall time, the CPU time of the snakemake process (user + sys: less sensitive than wall
time to other load on the machine) and its peak memory (max RSS), with the 1-minute load average before it,
and the phases of the dry run from the times of its log lines: start-up and parsing, building the DAG, the
dry-run loop over every job, and Python's exit (freeing the DAG). ``--source DIR`` takes the workflow from
another directory, to compare a change.
``--py-spy FILE`` (``pip install py-spy``) samples the first variant's run and prints where the time went,
by part: Snakefile parsing, our input functions / params / resources, Snakemake's DAG construction,
its dry-run scheduling loop, job printing. ``--cprofile FILE`` does the same run under cProfile (slower,
and it inflates many small calls) and prints the top functions. ``--select`` times what a dry run skips: one
round of the scheduler's job selection (``--scheduler ilp``, ``greedy``, and each with ``--scheduler-subsample``)
on the DAG's sets of jobs that become ready together (every split job; the training jobs), with the first
variant's options (``slurm-quiet``: the profile's 500 job slots), subsamples 100 and 500 unless
``--scheduler-subsample`` is given.
Every cluster job re-parses the Snakefile too, so parse time is paid per job as well.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BASE = "config/synthetic_lhco_size.yaml"
SHAPES = {"lhco": [BASE], "20k": [BASE, "config/dag_20k.yaml"]}
VARIANTS = {
    "plain": [],
    "quiet": ["--quiet", "rules"],
    "slurm": ["--profile", "profiles/slurm"],
    "slurm-quiet": ["--profile", "profiles/slurm", "--quiet", "rules"],
    "slurm-quiet-greedy": ["--profile", "profiles/slurm", "--quiet", "rules", "--scheduler", "greedy"],
    "slurm-quiet-subsample": ["--profile", "profiles/slurm", "--quiet", "rules", "--scheduler-subsample", "100"],
    "parse": ["--list-rules"],
}


def overlay(args) -> dict:
    """The benchmark's own overlay (last on the command line): the scan name and the shape's changes."""
    config = {"scan": f"dag_{args.shape}"}
    if args.seeds or args.shape == "lhco":
        config["seeds"] = list(range(1, (args.seeds or 8) + 1))
    if args.windows:
        merged = {}
        for name in SHAPES[args.shape]:
            merged.update((yaml.safe_load((REPO / name).read_text()) or {}).get("windows", {}))
        first, step = float(merged["first_sr_lo"]), float(merged["step"])
        config["windows"] = {"last_sr_lo": round(first + (args.windows - 1) * step, 6)}
        if merged.get("spacing", "linear") == "log":
            config["windows"]["last_sr_lo"] = round(first * (1 + step) ** (args.windows - 1), 6)
    if args.methods:
        config["methods"] = args.methods.split(",")
    if args.injections:
        config["injections"] = [int(i) for i in args.injections.split(",")]
    return config


def variants(args) -> dict[str, list[str]]:
    if args.variant:
        names = list(VARIANTS) if args.variant == ["all"] else args.variant
        return {name: VARIANTS[name] for name in names}
    extra = (["--profile", "profiles/slurm"] if args.slurm_profile else []) + (["--quiet", "rules"] if args.quiet else [])
    if args.scheduler:
        extra += ["--scheduler", args.scheduler]
    if args.scheduler_subsample:
        extra += ["--scheduler-subsample", str(args.scheduler_subsample)]
    return {" ".join(extra) or "plain": extra}


def job_stats(output: str) -> dict[str, int]:
    if "Job stats:" not in output:
        return {}
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


PHASES = [("start-up and parsing", "Building DAG of jobs..."), ("DAG", "Job stats:"),
          ("dry-run loop", "This was a dry-run")]


def run(command: list[str], cwd: Path, log: Path) -> dict:
    """Run ``command``; wall time, CPU time and peak RSS of the process (and its children, e.g. scontrol), and
    the phases of a dry run from the times its log lines appear: start-up and parsing (until "Building DAG of
    jobs..."), building the DAG (until the first "Job stats:"), the dry-run loop over every job (until "This was
    a dry-run") and the exit after it (Python freeing the DAG)."""
    load = os.getloadavg()[0]
    marks = {}
    with open(log, "w") as handle:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        for line in process.stdout:
            handle.write(line)
            for _, marker in PHASES:
                if marker not in marks and line.startswith(marker):
                    marks[marker] = time.perf_counter() - start
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{output[-3000:]}")
    phases, previous = {}, 0.0
    if len(marks) == len(PHASES):
        for name, marker in PHASES:
            phases[name], previous = round(marks[marker] - previous, 1), marks[marker]
        phases["exit"] = round(seconds - previous, 1)
    return {"wall_s": round(seconds, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "max_rss_mb": round(usage.ru_maxrss / 1024), "load_before": round(load, 2),
            "load_after": round(os.getloadavg()[0], 2), "jobs": job_stats(output), "phases_s": phases}


# --- where the time goes: py-spy's raw (collapsed) stacks, each sample given to the first part that matches ---

OURS = re.compile(r"\((?:[^()]*/)?(?:\w+\.smk|Snakefile|slidescan/[\w/]+\.py):\d+\)")  # py-spy: "f (train.smk:4)"
PARTS = [  # (part, any of these frames in the stack); checked in this order
    ("Snakefile parsing: our code (config validation, settings, rule definitions, their imports)", "OURS-PARSE"),
    ("Snakefile parsing: Snakemake's parser and compile", ["include (snakemake/workflow.py"]),
    ("our input functions, params, threads and resources, called by Snakemake per job", "OURS"),
    ("Snakemake: inspect.signature of every callable, at every call", ["get_function_params (snakemake/"]),
    ("Snakemake DAG: check each job's script: file (read once per job)", ["process_job (snakemake/dag.py"]),
    ("Snakemake DAG: check_directory_outputs (sorts every output path)", ["check_directory_outputs (snakemake/"]),
    ("Snakemake DAG: needrun, output mtimes and existence", ["update_needrun (snakemake/", "output_mintime (snakemake/",
                                                            "update_output_mintime (snakemake/",
                                                            "mtime_inventory (snakemake/", "missing_output (snakemake/"]),
    ("Snakemake DAG: conda/container bookkeeping", ["update_conda_envs (snakemake/", "update_container_imgs"]),
    ("Snakemake dry-run loop: each job's resources", ["expand_resources (snakemake/", "resources (snakemake/jobs.py"]),
    ("Snakemake dry-run loop: printing jobs", ["log_info (snakemake/", "printjob (snakemake", "format_files"]),
    ("Snakemake dry-run loop: finishing jobs", ["_finish_jobs (snakemake/", "finish (snakemake/dag.py"]),
    ("Snakemake DAG: jobs from rules (output matching, wildcards, input functions' results)",
     ["new_job (snakemake/", "file2jobs (snakemake/", "update_ (snakemake/dag.py", "update (snakemake/dag.py"]),
    ("Snakemake DAG: postprocess (ready jobs, checks, groups, priorities)", ["postprocess (snakemake/dag.py"]),
    ("Snakemake dry-run loop: other", ["schedule (snakemake/scheduling"]),
    ("job stats table", ["stats (snakemake/dag.py"]),
    ("imports and plugin loading", ["_find_and_load (<frozen", "get_plugins ("]),
    ("no Python frame (interpreter start and exit, freeing the DAG)", "EMPTY"),
]


def part_of(frames: list[str], parts: list | None = None) -> str:
    ours = any(OURS.search(frame) for frame in frames)
    for part, markers in parts or PARTS:
        if markers == "EMPTY":
            if not any(frame.strip("( ") for frame in frames):
                return part
        elif markers == "OURS-PARSE":
            if ours and any("include (snakemake/workflow.py" in frame for frame in frames):
                return part
        elif markers == "OURS":
            if ours:
                return part
        elif any(marker in frame for frame in frames for marker in markers):
            return part
    return "other (Snakemake's start, API and asyncio between tasks)"


def breakdown(raw: Path, seconds: float | None = None, top: int = 30, parts: list | None = None
              ) -> list[tuple[str, float]]:
    """Print the share of samples (and seconds of ``seconds``) of each part (``parts``: this module's ``PARTS``, the
    parts of a dry run, unless given), and the hottest stacks of ours."""
    shares, ours, total = collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        part = part_of(frames, parts)
        shares[part] += n
        total += n
        if part.startswith("our "):
            entry = next(f for f in frames if OURS.search(f))  # the function Snakemake called
            ours[re.sub(r"\((?:[^()]*/)?([^()/:]+):\d+\)", r"(\1)", entry)] += n
    rows = []
    print(f"where the time goes ({total} samples{f', {seconds:.1f} s' if seconds else ''}):")
    for part, n in shares.most_common(top):
        share = n / total
        rows.append((part, share))
        print(f"  {100 * share:5.1f} %" + (f"  {share * seconds:6.1f} s" if seconds else "") + f"  {part}")
    if ours:
        print("  our functions called by Snakemake, by entry point:")
        for name, n in ours.most_common(8):
            print(f"    {100 * n / total:5.1f} %  {name}")
    return rows


def cprofile_top(path: Path, n: int = 25) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    print(f"cProfile {path}: top {n} by cumulative time")
    stats.sort_stats("cumulative").print_stats(n)
    print("our functions (Snakefile, workflow/rules, slidescan):")
    stats.print_stats(r"Snakefile|workflow/rules|slidescan", 15)


# --- the job selection of a real run: Snakemake skips it in a dry run, so time it on the dry run's DAG ---

SELECT_DRIVER = r"""
import copy, json, random, sys, time
from snakemake.scheduling import job_scheduler

SUBSAMPLES = [int(n) for n in sys.argv.pop(1).split(",")]


def emit(**entry):
    print(json.dumps(entry), flush=True)


def schedule(self):
    # one round of JobScheduler.schedule outside a dry run, on sets of jobs that become ready together
    jobs = list(self.workflow.dag.needrun_jobs())
    split = [job for job in jobs if job.rule.name == "split"]
    train = [job for job in jobs if job.rule.name == "train"]
    start = time.perf_counter()
    remaining = self.remaining_jobs
    emit(step="remaining_jobs", seconds=round(time.perf_counter() - start, 3), n=len(remaining),
         limits={k: v for k, v in self.resources.items() if v < sys.maxsize})
    selectors = {"ilp": self._job_selector, "greedy": self.job_selector_greedy}
    for name, ready in (("split", split), ("train", train)):
        start = time.perf_counter()
        for job in ready:  # once per job and run: its params and resources again, then checked against the limits
            job.reset_params_and_resources()
            self.validate_job(job)
        emit(step="resources", ready=name, n=len(ready), seconds=round(time.perf_counter() - start, 2))
        for selector in ("ilp", "greedy"):
            for subsample in [0, *SUBSAMPLES]:
                chosen = random.sample(ready, k=subsample) if subsample and len(ready) > subsample else ready
                start = time.perf_counter()
                self.workflow.async_run(self.update_input_sizes(chosen))
                sizes = time.perf_counter() - start
                self.resources = copy.copy(self.global_resources)
                start = time.perf_counter()
                selected = selectors[selector](chosen, remaining, self.resources, self._input_sizes)
                fell_back = selected is None
                if fell_back:
                    selected = self.job_selector_greedy(chosen, remaining, self.resources, self._input_sizes)
                emit(step="select", ready=name, n=len(ready), scheduler=selector, subsample=subsample,
                     selected=len(selected), sizes_s=round(sizes, 2), select_s=round(time.perf_counter() - start, 2),
                     fell_back=fell_back)
    return True


job_scheduler.JobScheduler.schedule = schedule
from snakemake.cli import main
main(sys.argv[1:])
"""


def select(base: list[str], extra: list[str], work: Path, subsamples: str) -> None:
    """Time one scheduling round of a real run on the DAG's sets of jobs that become ready together (all split
    jobs once the inject jobs are done; all training jobs): the input-size stats, then the job selection by the
    ILP and the greedy scheduler, on all of them and on ``--scheduler-subsample`` random ones."""
    driver = work / "select_driver.py"
    driver.write_text(SELECT_DRIVER)
    record = run([sys.executable, str(driver), subsamples, *base[3:], *extra], work, work / "select.log")
    print(f"one scheduling round, as outside a dry run ({' '.join(extra)}; whole command {record['wall_s']:.0f} s, "
          f"load {record['load_before']} before):")
    for line in (work / "select.log").read_text().splitlines():
        if not line.startswith("{"):
            if "falling back" in line or "ILP" in line:
                print("  snakemake: " + line.strip())
            continue
        entry = json.loads(line)
        if entry["step"] == "remaining_jobs":
            print(f"  remaining_jobs (every round): {entry['seconds']} s for {entry['n']:,} jobs; limits {entry['limits']}"
                  + ("" if "_nodes" in entry["limits"] else " (no job slots: put --variant slurm-quiet first)"))
        elif entry["step"] == "resources":
            print(f"  {entry['ready']:6s} {entry['n']:6,} ready: params, resources and checks once per job "
                  f"(first round): {entry['seconds']:.1f} s")
        else:
            sub = f"subsample {entry['subsample']}" if entry["subsample"] else "all"
            print(f"  {entry['ready']:6s} {entry['n']:6,} ready, {entry['scheduler']:6s} {sub:14s}: input sizes "
                  f"{entry['sizes_s']:6.2f} s, selection {entry['select_s']:6.2f} s, {entry['selected']} selected"
                  + (" (ILP gave up: greedy)" if entry["fell_back"] else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="lhco")
    parser.add_argument("--seeds", type=int, help="pseudo-experiment seeds (lhco: 8; 20k: the config's 5)")
    parser.add_argument("--windows", type=int, help="this many windows, from the shape's first with its step")
    parser.add_argument("--methods", help="comma-separated methods instead of the shape's")
    parser.add_argument("--injections", help="comma-separated injections instead of the shape's")
    parser.add_argument("--variant", action="append", choices=[*VARIANTS, "all"])
    parser.add_argument("--quiet", action="store_true", help="snakemake -n --quiet rules (no per-job printout)")
    parser.add_argument("--slurm-profile", action="store_true", help="with --profile profiles/slurm")
    parser.add_argument("--scheduler", choices=["ilp", "greedy"])
    parser.add_argument("--scheduler-subsample", type=int)
    parser.add_argument("--source", type=Path, default=REPO,
                        help="copy Snakefile, workflow/, config/, profiles/ from here (to compare a change)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, help="append one JSON line per run")
    parser.add_argument("--py-spy", type=Path, help="record the first variant once with py-spy (raw) to this file")
    parser.add_argument("--py-spy-rate", type=int, default=20)
    parser.add_argument("--py-spy-bin", help="the py-spy executable (default: on PATH or beside this Python)")
    parser.add_argument("--cprofile", type=Path, help="run the first variant once under cProfile, to this file")
    parser.add_argument("--breakdown", type=Path, help="only print the parts of this py-spy raw file")
    parser.add_argument("--select", action="store_true",
                        help="also time one round of job selection (ILP, greedy, --scheduler-subsample) on the DAG, "
                             "with the first variant's options (use slurm-quiet: the profile's 500 jobs)")
    args = parser.parse_args()
    if args.breakdown:
        breakdown(args.breakdown)
        return
    chosen = variants(args)
    spy = args.py_spy_bin or shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if args.py_spy and not Path(spy).exists() and not shutil.which(spy):
        parser.error(f"--py-spy: no py-spy at {spy} (pip install py-spy, or --py-spy-bin)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for item in ("Snakefile", "workflow", "config", "profiles"):
            src = args.source / item
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
        (work / "config" / "dag_benchmark.yaml").write_text(yaml.safe_dump(overlay(args)))
        base = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", *SHAPES[args.shape],
                "config/dag_benchmark.yaml"]
        results = collections.defaultdict(list)
        import snakemake

        context = {"host": platform.node(), "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                   "snakemake": snakemake.__version__, "shape": args.shape, "overlay": overlay(args)}
        print(f"{context['host']} ({context['cpus']} CPUs) {context['date']}, Snakemake {context['snakemake']}, "
              f"shape {args.shape}: {' '.join(SHAPES[args.shape])} + {context['overlay']}", flush=True)
        for attempt in range(args.repeat):
            for name, extra in chosen.items():
                record = run(base + extra, work, work / "snakemake.log")
                record.update(context, variant=name, command=" ".join(["snakemake", *base[3:], *extra]),
                              run=attempt + 1)
                results[name].append(record)
                jobs = record["jobs"]
                counts = (f"{jobs['total']:,} jobs ({jobs.get('train', 0):,} training jobs, "
                          f"{jobs.get('split', 0):,} split, {jobs.get('bumphunt', 0):,} bump-hunt jobs)"
                          if jobs else "no DAG")
                print(f"  {name:22s} run {attempt + 1}/{args.repeat}: {counts}: {record['wall_s']:.1f} s wall, "
                      f"{record['cpu_s']:.1f} s CPU, peak {record['max_rss_mb']:,} MB, "
                      f"load {record['load_before']:.2f} before"
                      + (f"; phases (s): {record['phases_s']}" if record["phases_s"] else ""), flush=True)
                if args.json:
                    with open(args.json, "a") as handle:
                        handle.write(json.dumps(record) + "\n")
        print("summary (min, all runs):")
        for name, records in results.items():
            walls = ", ".join(f"{r['wall_s']:.1f}" for r in records)
            cpus = ", ".join(f"{r['cpu_s']:.1f}" for r in records)
            print(f"  {name:22s} wall min {min(r['wall_s'] for r in records):.1f} s ({walls}); CPU min "
                  f"{min(r['cpu_s'] for r in records):.1f} s ({cpus}); peak {max(r['max_rss_mb'] for r in records):,} MB; "
                  f"load {', '.join(str(r['load_before']) for r in records)}"
                  + (f"; fastest run's phases (s): {fastest['phases_s']}" if (fastest := min(records, key=lambda r: r["wall_s"]))["phases_s"] else ""))
        first = next(iter(chosen.values()))
        if args.py_spy:
            record = run([spy, "record", "-r", str(args.py_spy_rate), "-f", "raw", "-o", str(args.py_spy.resolve()),
                          "--", *base, *first], work, work / "py-spy.log")
            print(f"py-spy ({record['wall_s']:.1f} s wall, load {record['load_before']} before):")
            breakdown(args.py_spy, record["wall_s"])
        if args.select:
            select(base, first, work, str(args.scheduler_subsample) if args.scheduler_subsample else "100,500")
        if args.cprofile:
            command = [sys.executable, "-m", "cProfile", "-o", str(args.cprofile.resolve()), *base[1:], *first]
            record = run(command, work, work / "cprofile.log")
            print(f"cProfile run: {record['wall_s']:.1f} s wall")
            cprofile_top(args.cprofile)


if __name__ == "__main__":
    main()
