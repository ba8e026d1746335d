"""End-to-end time of issue 6's full-scale sliding scan, flows included, through Snakemake.

    python benchmarks/fullscale.py --scale cpu  --json benchmarks/results/fullscale_cpu.jsonl
    python benchmarks/fullscale.py --scale full --json benchmarks/results/fullscale_gpu.jsonl   # one GPU
    python benchmarks/fullscale.py --scale full --seeds 1    # a tenth of the pseudo-experiments: flows scale
                                                             # with seeds; classifiers less, since a training
                                                             # job's seeds share one batched model
    python benchmarks/fullscale.py --scale full --seeds 1 --injections 1000 --pack scan   # the slice that
                                                             # benchmarks/gpu_session.sh times on one GPU

The scan: 10 sliding windows (SR 0.4 TeV from 3.1 to 4.9 TeV, 0.6 TeV sidebands) x 5 folds x 10 seeds
x 3 methods (cwola-nn, cathode-nn, idealized-nn) x 5 injections, on synthetic data of LHCO size
(1 M background events), CATHODE's classifier (10 members of 64-64-64) and flow (15 affine layers of
[128]). ``full`` uses the GPU settings measured in docs/benchmarks.md (bf16 at batch 1024, the fast
flow); ``cpu`` is the same DAG shape scaled down for a 2-core machine (printed as ``scaling``).

Copies the workflow into ``--workdir`` (kept, so a run can be inspected or resumed), runs
``snakemake`` with ``--profile`` and prints one JSON line: jobs, fold trainings, flows, wall time,
the training and flow seconds summed from the scan's ``jobs.csv``, the seconds of every stage (from
the start and end of each job in Snakemake's log: flows, classifiers, bump hunts, the rest), and on a
GPU its mean utilisation (``nvidia-smi`` sampled every second). ``--pack`` sets ``packing.models``
(``window``: one flow job per window, its flows one batched model). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from slidescan.windows import window_grid

REPO = Path(__file__).resolve().parents[1]

SHAPE = {"windows": 10, "folds": 5, "seeds": 10, "methods": ["cwola-nn", "cathode-nn", "idealized-nn"],
         "injections": 5}
# sidebands from 2.5 TeV, where the synthetic background starts, to 5.9 TeV; SR 3.3-3.7 TeV holds the signal
WINDOWS = {"spacing": "linear", "first_sr_lo": 3.1, "last_sr_lo": 4.9, "sr_width": 0.4, "step": 0.2,
           "sb_width": 0.6}
FLOW_MODEL = {"transforms": 15, "hidden": [128], "n_best": 10, "max_train_events": 0, "oversampling": 4,
              "lr_schedule": "cosine"}
CLASSIFIER_MODEL = {"hidden": [64, 64, 64], "members": 10, "n_best": 10}

# S/B in 3.3-3.7 TeV of about 0.75, 0.4, 0.2, 0.1 % (config/synthetic_lhco_size.yaml)
SCALES = {
    "full": {
        "data": {"n_background": 1_000_000, "signal_pool": 10_000, "reference_background": 1_000_000,
                 "reference_signal": 100_000},
        "injections": [0, 1000, 500, 250, 125],
        "seeds": 10,
        "nn": {"epochs": 100, "batch_size": 1024, "learning_rate": 0.0028, "precision": "bf16-mixed"},
        "flow": {"epochs": 40, "batch_size": 2048, "learning_rate": 0.002},
        "scaling": "none: the full scan",
    },
    "cpu": {
        "data": {"n_background": 100_000, "signal_pool": 10_000, "reference_background": 100_000,
                 "reference_signal": 20_000},
        "injections": [0, 100, 50, 25, 12],
        "seeds": 1,
        "nn": {"epochs": 10, "batch_size": 128, "learning_rate": 0.001, "precision": "32"},
        "flow": {"epochs": 4, "batch_size": 2048, "learning_rate": 0.002},
        "scaling": "events / 10 (same S/B), seeds / 10, classifier epochs / 10 (batch 128, FP32), flow epochs / 10",
    },
}


def overlay(scale: str, device: str, seeds: int | None = None, pack: str = "experiment", cpu_members: int = 0,
            injections: list[int] | None = None, windows: tuple[float, float] | None = None) -> dict:
    s = SCALES[scale]
    grid = {**WINDOWS, "first_sr_lo": windows[0], "last_sr_lo": windows[1]} if windows else WINDOWS
    unknown = sorted(set(injections or []) - set(s["injections"]))
    if unknown:
        raise SystemExit(f"--injections {unknown}: the {scale} scale injects {s['injections']}")
    return {
        "packing": {"models": pack, "cpu_members": cpu_members},
        "scan": f"fullscale_{scale}",
        "data": {"source": "synthetic", "seed": 1, "synthetic": s["data"]},
        "injections": [i for i in s["injections"] if i in injections] if injections else s["injections"],
        "seeds": list(range(1, (seeds or s["seeds"]) + 1)),
        "truth_mass": 3.5,
        "windows": grid,
        "folds": {"k": SHAPE["folds"]},
        "methods": SHAPE["methods"],
        "classifier": {"nn": {**CLASSIFIER_MODEL, **s["nn"], "device": device}},
        "flow": {**FLOW_MODEL, **s["flow"], "device": device},
        "bumphunt": {"efficiencies": [1.0, 0.1, 0.01, 0.002]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu")
    parser.add_argument("--device", default="auto", help="classifier and flow device (auto: cuda when present)")
    parser.add_argument("--seeds", type=int, default=None, help="pseudo-experiments (default: the scale's)")
    parser.add_argument("--profile", default="profiles/local")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new directory under /tmp")
    parser.add_argument("--json", type=Path, default=None, help="append the result line here")
    parser.add_argument("--pack", default="experiment", choices=["experiment", "seeds", "window", "scan"],
                        help="packing.models: how many flows one job trains as one batched model")
    parser.add_argument("--cpu-members", type=int, default=0, help="packing.cpu_members (0: no cap)")
    parser.add_argument("--injections", type=int, nargs="+", default=None,
                        help="a slice: these of the scale's injections only (default: all)")
    parser.add_argument("--windows", type=float, nargs=2, default=None, metavar=("FIRST", "LAST"),
                        help="a slice: the windows whose SR starts from FIRST to LAST TeV (default: all 10)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop Snakemake (SIGINT) after this many seconds and report the jobs finished by then")
    parser.add_argument("snakemake_args", nargs="*", help="passed to snakemake (after --)")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="slidescan_fullscale_"))
    work.mkdir(parents=True, exist_ok=True)
    for item in ("Snakefile", "workflow", "config", "profiles"):
        src, dst = REPO / item, work / item
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy(src, dst)
    config = overlay(args.scale, args.device, args.seeds, args.pack, args.cpu_members, args.injections,
                     args.windows)
    (work / "config" / "fullscale.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

    command = [sys.executable, "-m", "snakemake", "--profile", args.profile, "--configfile",
               "config/fullscale.yaml", *args.snakemake_args]
    print(f"fullscale: {args.scale} in {work}: {' '.join(command)}", flush=True)
    gpu_log, log = work / "gpu_utilisation.csv", work / "fullscale_snakemake.log"
    sampler = _gpu_sampler(gpu_log)
    started = time.perf_counter()
    with log.open("w") as out:
        head = subprocess.Popen(command, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc, stopped = head.wait(timeout=args.timeout), False
        except subprocess.TimeoutExpired:
            # SIGINT: Snakemake stops scheduling; a local run would still wait for its running jobs, so after
            # 20 s the whole process group (the head and its jobs) is killed
            head.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                head.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):  # the group may be gone already
                os.killpg(head.pid, signal.SIGKILL)
            rc, stopped = head.wait(), True
    wall = time.perf_counter() - started
    if sampler is not None:
        sampler.terminate()
    output = log.read_text()
    if rc != 0 and not stopped:
        raise SystemExit(f"snakemake failed (rc {rc}); its output: {log}\n" + output[-3000:])

    results = work / "results" / config["scan"]
    finished = (results / "jobs.csv").exists()
    if not finished and not stopped:  # a dry run (-- -n) or a target short of the whole scan
        print(f"fullscale: snakemake finished in {wall:.1f} s without the whole scan; its output: {log}")
        return
    done = re.findall(r"^(\d+) of (\d+) steps \(\d+%\) done", output, re.M)
    seconds, counts = _stage_seconds(output)
    line = {
        "date": time.strftime("%Y-%m-%d"), "host": platform.node(), "scale": args.scale,
        "scaling": SCALES[args.scale]["scaling"], "device": args.device, "profile": args.profile,
        "cpus": os.cpu_count(), "gpu": _gpu_name(),
        "windows": len(window_grid(config["windows"])), "folds": SHAPE["folds"], "seeds": len(config["seeds"]),
        "methods": len(SHAPE["methods"]), "injections": config["injections"],
        "snakemake_jobs": int(done[-1][1]) if done else None,
        "snakemake_jobs_done": int(done[-1][0]) if done else 0,
        "stopped_at_timeout": stopped,
        "wall_s": round(wall, 1), "wall_hours": round(wall / 3600, 3),
        "pack": args.pack, "cpu_members": args.cpu_members,
        "stage_job_seconds": seconds, "stage_jobs_finished": counts,
        "gpu_utilisation_mean_percent": _mean_utilisation(gpu_log),
    }
    if finished:
        jobs = pd.read_csv(results / "jobs.csv")
        line.update({
            "fold_trainings": int((jobs["job"] == "train").sum()), "flows": int((jobs["job"] == "model").sum()),
            "all_done": bool((jobs["state"] == "done").all()),
            "train_s_sum": round(float(jobs.loc[jobs["job"] == "train", "train_seconds"].sum()), 1),
            "flow_s_sum": round(float(jobs.loc[jobs["job"] == "model", "train_seconds"].sum()), 1),
            "max_z_truth_window": _max_z(results, config),
        })
    else:
        line["all_done"] = False
    print(json.dumps(line), flush=True)
    if args.json:
        with args.json.open("a") as f:
            f.write(json.dumps(line) + "\n")


STAGES = {"sideband_flow": "flows", "train": "classifiers", "bumphunt": "bump hunts"}


def _stage_seconds(output: str) -> tuple[dict, dict]:
    """Seconds and number of the finished jobs of each stage (start to finish in Snakemake's log; jobs may
    overlap)."""
    started, rule_of, total, count = {}, {}, {}, {}
    stamp = None
    for line in output.splitlines():
        found = re.match(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$", line)
        if found:
            stamp = time.mktime(time.strptime(found.group(1), "%a %b %d %H:%M:%S %Y"))
            continue
        rule = re.match(r"^(?:local)?rule (\w+):$", line)
        if rule:
            current = rule.group(1)
            continue
        job = re.match(r"^    jobid: (\d+)$", line)
        if job and stamp is not None:
            started[job.group(1)], rule_of[job.group(1)] = stamp, current
            continue
        finished = re.match(r"^Finished jobid: (\d+)", line)
        if finished and finished.group(1) in started and stamp is not None:
            stage = STAGES.get(rule_of[finished.group(1)], "the rest")
            total[stage] = total.get(stage, 0.0) + stamp - started[finished.group(1)]
            count[stage] = count.get(stage, 0) + 1
    return {k: round(v) for k, v in total.items()}, count


def _gpu_sampler(path: Path):
    """nvidia-smi writing the GPU's utilisation every second, or None without one."""
    if not shutil.which("nvidia-smi"):
        return None
    return subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-l", "1"],
                            stdout=path.open("w"), stderr=subprocess.DEVNULL)


def _mean_utilisation(path: Path) -> float | None:
    if not path.exists():
        return None
    values = [float(v) for v in path.read_text().split() if v.replace(".", "", 1).isdigit()]
    return round(sum(values) / len(values), 1) if values else None


def _gpu_name() -> str | None:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        return None


def _max_z(results: Path, config: dict) -> dict:
    """Per method and injection, the median over seeds of the largest local Z in the window nearest 3.5 TeV."""
    scan = pd.read_csv(results / "pvalue_scan.csv")
    centre = 0.5 * (scan["sr_lo"] + scan["sr_hi"])
    truth = scan[(centre - config["truth_mass"]).abs() == (centre - config["truth_mass"]).abs().min()]
    best = truth.groupby(["method", "injection", "seed"])["z"].max().groupby(["method", "injection"]).median()
    return {f"{m} {i}": round(float(z), 2) for (m, i), z in best.items()}


if __name__ == "__main__":
    main()
