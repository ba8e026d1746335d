"""Site settings for SLURM: from the config's `cluster` section, overridden by the environment."""

from slidescan.cluster import site_settings, slurm_resources

CONFIG = {"cluster": {"account": "physics", "partition": "cpu", "gpu_partition": None, "qos": None}}


def test_config_values_become_plugin_resources():
    assert slurm_resources(CONFIG, environ={}) == {"slurm_account": "physics", "slurm_partition": "cpu"}
    # no GPU partition configured: GPU jobs go to the common partition
    assert slurm_resources(CONFIG, gpu=True, environ={}) == {"slurm_account": "physics", "slurm_partition": "cpu"}


def test_environment_wins_and_gpu_jobs_get_the_gpu_partition():
    environ = {"SLIDESCAN_SLURM_ACCOUNT": "mine", "SLIDESCAN_SLURM_GPU_PARTITION": "a100", "SLIDESCAN_SLURM_QOS": "long"}
    assert slurm_resources(CONFIG, gpu=True, environ=environ) == {"slurm_account": "mine", "slurm_partition": "a100",
                                                                 "qos": "long"}
    assert slurm_resources(CONFIG, gpu=False, environ=environ) == {"slurm_account": "mine", "slurm_partition": "cpu",
                                                                  "qos": "long"}


def test_nothing_set_means_no_resources_so_the_plugin_defaults_apply():
    assert slurm_resources({}, gpu=True, environ={}) == {}
    assert site_settings({"cluster": {}}, environ={"SLIDESCAN_SLURM_PARTITION": ""}) == {}
