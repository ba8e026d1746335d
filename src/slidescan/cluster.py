"""Site settings of a SLURM cluster (account, partition, QoS), kept out of the workflow's code.

They come from the environment (``SLIDESCAN_SLURM_*``, for a user's shell profile) or from the
config's ``cluster`` section (for a scan that should always go to one place); the environment wins.
The result is a dict of Snakemake resources that snakemake-executor-plugin-slurm turns into
``-A``/``-p``/``--qos``; unset keys are left out, so the plugin's own defaults apply.
"""

from __future__ import annotations

import os

ENVIRONMENT = {
    "account": "SLIDESCAN_SLURM_ACCOUNT",
    "partition": "SLIDESCAN_SLURM_PARTITION",
    "gpu_partition": "SLIDESCAN_SLURM_GPU_PARTITION",
    "qos": "SLIDESCAN_SLURM_QOS",
}


def site_settings(config: dict, environ: dict | None = None) -> dict[str, str]:
    """account, partition, gpu_partition and qos that are set, the environment over the config."""
    environ = os.environ if environ is None else environ
    section = config.get("cluster") or {}
    settings = {}
    for key, variable in ENVIRONMENT.items():
        value = environ.get(variable) or section.get(key)
        if value:
            settings[key] = str(value)
    return settings


def slurm_resources(config: dict, gpu: bool = False, environ: dict | None = None) -> dict[str, str]:
    """Resources for a rule's jobs; GPU jobs go to ``gpu_partition`` when one is set."""
    settings = site_settings(config, environ)
    resources = {}
    if "account" in settings:
        resources["slurm_account"] = settings["account"]
    partition = settings.get("gpu_partition") if gpu else None
    partition = partition or settings.get("partition")
    if partition:
        resources["slurm_partition"] = partition
    if "qos" in settings:
        resources["qos"] = settings["qos"]
    return resources
