"""Site settings of a SLURM cluster (account, partition, QoS), kept out of the workflow's code.

They come from the environment (``SLIDESCAN_SLURM_*``, for a user's shell profile) or from the
config's ``cluster`` section (for a scan that should always go to one place); the environment wins.
The result is a dict of Snakemake resources that snakemake-executor-plugin-slurm turns into
``-A``/``-p``/``--qos``; unset keys are left out, so the plugin's own defaults apply.

Time limit and memory are resources of the rules too, growing with the attempt so that a job killed
for time or memory gets more on its retry. They are Python callables here, not strings in the
profile: Snakemake ``eval``s a profile's resource strings once per job, which was a quarter of the
time of a dry run of a cluster-sized DAG.
"""

from __future__ import annotations

import os

ENVIRONMENT = {
    "account": "SLIDESCAN_SLURM_ACCOUNT",
    "partition": "SLIDESCAN_SLURM_PARTITION",
    "gpu_partition": "SLIDESCAN_SLURM_GPU_PARTITION",
    "qos": "SLIDESCAN_SLURM_QOS",
}


def site_settings(cluster, environ: dict | None = None) -> dict[str, str]:
    """account, partition, gpu_partition and qos that are set, the environment over the config's ``cluster``."""
    environ = os.environ if environ is None else environ
    settings = {}
    for key, variable in ENVIRONMENT.items():
        value = environ.get(variable) or getattr(cluster, key)
        if value:
            settings[key] = str(value)
    return settings


def _growing(first: int):
    def per_attempt(wildcards, attempt):
        return first * attempt
    return per_attempt


def job_limits(cluster, gpu: bool = False) -> dict:
    """``runtime`` and ``mem_mb`` of a rule's jobs, ``attempt`` times the config's first-attempt values.

    ``disk_mb`` is fixed (the SLURM plugin does not send it): otherwise Snakemake's default estimates
    it from the sizes of every job's input files, a file-system call per job at DAG build.
    """
    prefix = "gpu_" if gpu else ""
    return {"runtime": _growing(int(getattr(cluster, f"{prefix}runtime"))),
            "mem_mb": _growing(int(getattr(cluster, f"{prefix}mem_mb"))), "disk_mb": 1000}


def slurm_resources(cluster, gpu: bool = False, environ: dict | None = None) -> dict:
    """Resources for a rule's jobs (``cluster``: the scan's ``ClusterSettings``); GPU jobs ask for
    ``cluster.gpus`` GPUs (Snakemake's ``gpu`` resource, the plugin's ``--gpus``), or with
    ``cluster.gpu_shards`` for that many shards of one GPU (``--gres=shard:N``: jobs too small to
    fill a GPU share one, where the site has set up Slurm's gres/shard), and go to ``gpu_partition``
    when one is set."""
    settings = site_settings(cluster, environ)
    resources = job_limits(cluster, gpu)
    if gpu and cluster.gpu_shards:
        if cluster.gpus > 1:
            raise ValueError(f"cluster: gpu_shards ({cluster.gpu_shards}) asks for a share of one GPU, but gpus is "
                             f"{cluster.gpus}; set one of them (gpus: 1 with gpu_shards, or gpu_shards: 0)")
        resources["gres"] = f"shard:{int(cluster.gpu_shards)}"
    elif gpu and cluster.gpus:
        resources["gpu"] = int(cluster.gpus)
    if "account" in settings:
        resources["slurm_account"] = settings["account"]
    partition = settings.get("gpu_partition") if gpu else None
    partition = partition or settings.get("partition")
    if partition:
        resources["slurm_partition"] = partition
    if "qos" in settings:
        resources["qos"] = settings["qos"]
    return resources
