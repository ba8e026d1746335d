"""``slidescan launch``: the Snakemake head process as a long, cheap SLURM job (via submitit).

A full scan runs for hours; a head process on the login node dies with the login session. Here the
head runs ``slidescan run --profile profiles/slurm`` inside a 1-2 core CPU job and submits the
training jobs from there. What was submitted is recorded in ``results/<scan>/launch/head.json`` so
that ``slidescan status`` can say whether the head is still running and where its log is.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_path
from ..layout import Layout
from . import site_settings

RECORD = "head.json"


@dataclass
class HeadJob:
    job_id: str
    stdout: Path
    stderr: Path


def run_head(workdir: str, argv: list[str]) -> int:
    """What the head job executes: ``slidescan run`` in the checkout, as from a login shell."""
    from ..cli import main

    os.chdir(workdir)
    # the head's own allocation must not leak into the jobs it submits (srun/sbatch read SLURM_*)
    for name in [n for n in os.environ if n.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
        if name not in ("SLURM_CONF",):
            os.environ.pop(name)
    rc = main(["run", *argv])
    if rc != 0:
        raise RuntimeError(f"slidescan run {' '.join(argv)} exited with {rc}; see the log above and `slidescan status`")
    return rc


def submit_head(workdir: Path, settings, run_argv: list[str], hours: float, cpus: int,
                mem_gb: int, partition: str | None, account: str | None, qos: str | None) -> HeadJob:
    import submitit

    scan = settings.scan
    folder = settings.layout(workdir).launch()
    folder.mkdir(parents=True, exist_ok=True)
    site = site_settings(settings.cluster)
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
    parameters = {"job_name": f"slidescan-{scan}", "time": int(hours * 60), "cpus_per_task": cpus,
                  "mem": f"{mem_gb}G", "nodes": 1, "ntasks_per_node": 1}
    for key, value in (("partition", partition or site.get("partition")),
                       ("account", account or site.get("account")), ("qos", qos or site.get("qos"))):
        if value:
            parameters[key] = value
    executor.update_parameters(**parameters)
    job = executor.submit(run_head, str(workdir), run_argv)
    head = HeadJob(str(job.job_id), Path(job.paths.stdout), Path(job.paths.stderr))
    record = {"job_id": head.job_id, "stdout": str(head.stdout), "stderr": str(head.stderr),
              "submitted": time.strftime("%Y-%m-%d %H:%M:%S"), "command": ["slidescan", "run", *run_argv]}
    with atomic_path(folder / RECORD) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1))
    return head


def head_status(layout: Layout) -> str | None:
    """One line on the launched head job, or None when this scan was not launched."""
    path = layout.launch() / RECORD
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        job_id = record["job_id"]
    except (ValueError, KeyError) as err:
        return f"head job: unreadable record {path} ({err})"
    state = slurm_state(job_id)
    return (f"head job {job_id} (slidescan launch, submitted {record.get('submitted', '?')}): {state}\n"
            f"  log: {record.get('stderr')}\n  stop the scan (Snakemake cancels its jobs): scancel --signal=INT {job_id}")


def slurm_state(job_id: str) -> str:
    """The job's state from squeue, else from sacct; 'unknown' without SLURM tools."""
    for command in (["squeue", "-h", "-j", job_id, "-o", "%T"], ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State"]):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.split()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out:
            return out[0]
    return "unknown (not in squeue or sacct)"
