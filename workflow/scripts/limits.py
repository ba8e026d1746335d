import os

from slidescan.smk import job_log, settings
from slidescan.stages.limits import run_limits

with job_log(snakemake):
    scan = settings(snakemake)
    keys = [(m, s.name) for m in scan.methods for s in scan.signals]  # the rule's order of plots
    # two processes where the job may use two CPUs: it runs alone at the end of the DAG. Not ``threads: 2``: a SLURM
    # node of 2 CPUs whose other CPU holds the head job (``slidescan launch``) could never start it
    # (Linux only: elsewhere the CPUs the job may use are unknown and fork is unsafe, so serial)
    workers = min(2, len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else 1
    run_limits(scan, snakemake.input[0], snakemake.output.table, dict(zip(keys, snakemake.output.plots)), workers)
