"""Site settings for SLURM: from the config's `cluster` section, overridden by the environment."""

import pytest

from slidescan.cluster import job_limits, site_settings, slurm_resources
from slidescan.settings import ClusterSettings

CONFIG = ClusterSettings.from_config({"account": "physics", "partition": "cpu", "gpu_partition": None, "qos": None})
NOTHING = ClusterSettings.from_config({})


LIMITS = {"runtime", "mem_mb", "disk_mb", "gpu"}


def site(resources: dict) -> dict:
    return {k: v for k, v in resources.items() if k not in LIMITS}


def test_config_values_become_plugin_resources():
    assert site(slurm_resources(CONFIG, environ={})) == {"slurm_account": "physics", "slurm_partition": "cpu"}
    # no GPU partition configured: GPU jobs go to the common partition
    assert site(slurm_resources(CONFIG, gpu=True, environ={})) == {"slurm_account": "physics",
                                                                   "slurm_partition": "cpu"}


def test_environment_wins_and_gpu_jobs_get_the_gpu_partition():
    environ = {"SLIDESCAN_SLURM_ACCOUNT": "mine", "SLIDESCAN_SLURM_GPU_PARTITION": "a100", "SLIDESCAN_SLURM_QOS": "long"}
    assert site(slurm_resources(CONFIG, gpu=True, environ=environ)) == {"slurm_account": "mine",
                                                                       "slurm_partition": "a100", "qos": "long"}
    assert site(slurm_resources(CONFIG, gpu=False, environ=environ)) == {"slurm_account": "mine",
                                                                        "slurm_partition": "cpu", "qos": "long"}


def test_nothing_set_means_no_resources_so_the_plugin_defaults_apply():
    assert site(slurm_resources(NOTHING, gpu=True, environ={})) == {}
    assert site_settings(NOTHING, environ={"SLIDESCAN_SLURM_PARTITION": ""}) == {}


def test_time_and_memory_grow_with_the_attempt():
    """A job killed for time or memory gets more on its retry; the config sets the first attempt's."""
    gpu = slurm_resources(ClusterSettings.from_config({"gpu_runtime": 90}), gpu=True, environ={})
    assert [gpu["runtime"](None, attempt) for attempt in (1, 2, 3)] == [90, 180, 270]
    assert [gpu["mem_mb"](None, attempt) for attempt in (1, 3)] == [8000, 24000]
    assert gpu["gpu"] == 1 and "gpu" not in slurm_resources(NOTHING, environ={})
    assert "gpu" not in slurm_resources(ClusterSettings.from_config({"gpus": 0}), gpu=True, environ={})
    cpu = job_limits(NOTHING, gpu=False)
    assert (cpu["runtime"](None, 2), cpu["mem_mb"](None, 2), cpu["disk_mb"]) == (60, 8000, 1000)


def test_gpu_shards_ask_for_a_share_of_one_gpu_instead_of_whole_gpus():
    """gpu_shards: small jobs share a GPU through Slurm's gres/shard (--gres=shard:N), CPU jobs ask for none."""
    shared = ClusterSettings.from_config({"gpu_shards": 2})
    gpu = slurm_resources(shared, gpu=True, environ={})
    assert gpu["gres"] == "shard:2" and "gpu" not in gpu
    assert "gres" not in slurm_resources(shared, gpu=False, environ={})
    assert slurm_resources(ClusterSettings.from_config({"gpus": 4}), gpu=True, environ={})["gpu"] == 4
    with pytest.raises(ValueError, match=r"^cluster: gpu_shards \(1\) asks for a share of one GPU, but gpus is 2"):
        slurm_resources(ClusterSettings.from_config({"gpus": 2, "gpu_shards": 1}), gpu=True, environ={})
