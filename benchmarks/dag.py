"""How long Snakemake takes to build (and dry-run) the DAG of a cluster-sized scan.

    python benchmarks/dag.py [--seeds 8] [--repeat 2] [--quiet] [--slurm-profile]

Copies the workflow to a temporary directory, overlays ``config/synthetic_lhco_size.yaml`` with
``--seeds`` pseudo-experiment seeds (8 seeds: 23,800 training jobs) and times ``snakemake -n``
(``--quiet``: ``snakemake -n --quiet``, which skips printing every job; ``--slurm-profile``: with
``--profile profiles/slurm``, as a cluster user runs it). Nothing is trained.
Every cluster job re-parses the Snakefile too, so parse time is paid per job as well.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quiet", action="store_true", help="snakemake -n --quiet (no per-job printout)")
    parser.add_argument("--slurm-profile", action="store_true", help="with --profile profiles/slurm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for item in ("Snakefile", "workflow", "config", "profiles"):
            src = REPO / item
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
        overlay = work / "config" / "dag_benchmark.yaml"
        overlay.write_text(yaml.safe_dump({"scan": "dag_benchmark", "seeds": list(range(1, args.seeds + 1))}))
        command = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
                   "config/synthetic_lhco_size.yaml", str(overlay.relative_to(work))]
        if args.quiet:
            command += ["--quiet", "rules"]
        if args.slurm_profile:
            command += ["--profile", "profiles/slurm"]
        for attempt in range(args.repeat):
            start = time.perf_counter()
            result = subprocess.run(command, cwd=work, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if result.returncode != 0:
                raise SystemExit(result.stderr[-3000:])
            stats = dict(re.findall(r"^(\w+)\s+(\d+)$", (result.stdout + result.stderr).split("Job stats:")[1], re.M))
            print(f"{platform.node()} {time.strftime('%Y-%m-%d')}: snakemake -n{' --quiet' if args.quiet else ''}: "
                  f"{stats['total']} jobs ({stats['train']} training jobs, {stats['bumphunt']} bump-hunt jobs) "
                  f"in {seconds:.1f} s{' with profiles/slurm' if args.slurm_profile else ''} "
                  f"(run {attempt + 1} of {args.repeat})", flush=True)


if __name__ == "__main__":
    main()
