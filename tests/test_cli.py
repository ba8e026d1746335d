"""The command line a physicist types: help for the common tasks, clear errors for a wrong config."""

import subprocess
import sys

from conftest import REPO


def cli(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slidescan.cli", *args], cwd=cwd, capture_output=True, text=True)


def test_help_lists_the_common_tasks():
    result = cli("--help")
    assert result.returncode == 0
    for command in ("run", "launch", "status", "report"):
        assert f"    {command}" in result.stdout, command
    launch = cli("launch", "--help")
    assert launch.returncode == 0
    assert "--hours" in launch.stdout and "default: profiles/slurm" in launch.stdout


def test_missing_config_file_is_named(tmp_path):
    result = cli("run", "--configfile", "config/nope.yaml", "--workdir", str(tmp_path))
    assert result.returncode != 0
    assert "config/nope.yaml does not exist" in result.stderr


def test_status_without_a_launched_head_job_says_nothing_about_one(tmp_path):
    result = cli("status", "--workdir", str(REPO), "--configfile", "config/config.yaml")
    assert "head job" not in result.stdout
    assert "training folds" in result.stdout
