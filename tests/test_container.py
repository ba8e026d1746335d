"""The Apptainer path: `cluster.container`, profiles/slurm-apptainer and the image recipes in containers/.

No container runs here: Debian 12 has no apptainer package and no container engine runs on the test
machines. Where a test needs the binary, a stand-in `apptainer` on PATH records the arguments Snakemake gives
it and runs the job's command on the host. So these tests show what Snakemake asks of apptainer for each
job, not that the image builds or that a GPU is seen inside it (docs/cluster.md, "Containers").
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from test_workflow import TINY, job_counts, make_workdir

pytestmark = pytest.mark.workflow

IMAGE = "/images/slidescan.sif"  # never opened: the stand-in apptainer does not look at it
PROFILE = REPO / "profiles" / "slurm-apptainer" / "config.v8+.yaml"
# TINY with one method, one injection and less data: prepare_data runs for real in one test
SMALL = {**TINY, "methods": ["cwola-nn"], "injections": [400],
         "data": {**TINY["data"], "synthetic": {"n_background": 20000, "signal_pool": 1000,
                                                "reference_background": 2000, "reference_signal": 500}}}
FAKE_APPTAINER = """#!{python}
# stand-in for apptainer: one JSON line of arguments per call; `exec` runs its command on the host
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_APPTAINER_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args == ["--version"]:
    print("apptainer version 1.3.6")
    sys.exit(0)
assert args[0] == "exec" and args[-2] == "-c", args
sys.exit(subprocess.call([args[-3], "-c", args[-1]]))
"""
# appended to the workdir's copy of the Snakefile: which image Snakemake gave each rule, and whether it runs
# in the head (localrules) or is submitted
REPORT_RULES = """
for _rule in workflow.rules:
    print("RULE", _rule.name, _rule.container_img or "-", "local" if _rule.name in workflow._localrules else "submitted",
          file=sys.stderr)
"""


def workdir_with(tmp_path: Path, container: str | None) -> Path:
    config = {**SMALL, "cluster": {"account": "physics"} | ({"container": container} if container else {})}
    (tmp_path / "scan").mkdir()
    workdir = make_workdir(tmp_path / "scan", config)
    with open(workdir / "Snakefile", "a") as snakefile:
        snakefile.write("import sys\n" + REPORT_RULES)
    return workdir


def environment(tmp_path: Path, apptainer: bool) -> dict:
    """PATH with this Python's bin directory and the system's, plus the stand-in apptainer when asked."""
    path = [str(Path(sys.executable).parent), "/usr/bin", "/bin"]
    if apptainer:
        fake = tmp_path / "fakebin"
        fake.mkdir()
        (fake / "apptainer").write_text(FAKE_APPTAINER.format(python=sys.executable))
        (fake / "apptainer").chmod(0o755)
        path.insert(0, str(fake))
    elif shutil.which("apptainer", path=os.pathsep.join(path)) or shutil.which("singularity", path=os.pathsep.join(path)):
        pytest.skip("apptainer is installed here: the case without it cannot be made")
    return {**os.environ, "PATH": os.pathsep.join(path), "FAKE_APPTAINER_LOG": str(tmp_path / "apptainer.log")}


def snakemake(workdir: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm-apptainer", *args],
                          cwd=workdir, capture_output=True, text=True, env=env)


def calls(env: dict) -> list[list[str]]:
    log = Path(env["FAKE_APPTAINER_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def rules(output: str) -> dict[str, tuple[str, str]]:
    """rule -> (image or '-', 'local' or 'submitted'), as Snakemake set them up."""
    return {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(r"^RULE (\S+) (\S+) (local|submitted)$",
                                                                    output, re.M)}


def profile_args() -> list[str]:
    return yaml.safe_load(PROFILE.read_text())["apptainer-args"].split()


def test_dry_run_with_the_apptainer_profile_puts_every_job_in_the_image(tmp_path):
    workdir = workdir_with(tmp_path, IMAGE)
    env = environment(tmp_path, apptainer=True)
    result = snakemake(workdir, env, "-n")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    counts = job_counts(output)
    by_rule = rules(output)
    submitted = {name for name, (_, where) in by_rule.items() if where == "submitted"}
    # the jobs SLURM would run (cwola needs no sideband flow); the head's own rules get the image too
    # (limits needs background-only and injected pseudo-experiments; this scan injects 400 only; prepare_signal
    # runs for named signal models only, prepare_sample and split_sample for data.samples only)
    assert {"prepare_data", "inject", "split", "train", "bumphunt"} <= \
        submitted - {"limits", "prepare_signal", "prepare_sample", "split_sample"} <= set(counts)
    for name in counts:
        if name != "all":  # the target rule runs nothing
            assert by_rule[name][0] == IMAGE, (name, by_rule[name])
    # Snakemake asked the runtime for its version (it refuses apptainer < 1.0) and ran nothing else
    assert calls(env) == [["--version"]]


def test_a_submitted_rule_runs_its_script_in_the_image_with_the_profiles_arguments(tmp_path):
    """prepare_data for real, with the profile's deployment settings (on the local executor instead of SLURM,
    whose job step runs the rule the same way): the exact `apptainer exec` Snakemake runs."""
    workdir = workdir_with(tmp_path, IMAGE)
    env = environment(tmp_path, apptainer=True)
    events = f"results/{SMALL['scan']}/data/events.h5"
    result = snakemake(workdir, env, events, "--executor", "local", "--cores", "1")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert f"Activating singularity image {IMAGE}" in output
    assert (workdir / events).stat().st_size > 100_000  # the stand-in ran the script on the host
    execs = [c for c in calls(env) if c[0] == "exec"]
    assert len(execs) == 1
    args = execs[0]
    # the working directory is the container's $HOME (results/, config/, the job's script are in it) ...
    assert args[1:3] == ["--home", str(workdir)]
    # ... then the profile's arguments (--nv: the host's GPU driver), the image, and the job's Python script
    assert args[3:3 + len(profile_args())] == profile_args() and "--nv" in profile_args()
    assert args[-4:-1] == [IMAGE, "bash", "-c"]
    assert re.search(r"\bpython \S+/\.snakemake/scripts/tmp\w+\.prepare_data\.py$", args[-1]), args[-1]


def test_without_cluster_container_no_job_uses_apptainer(tmp_path):
    """The same profile with no image: Snakemake needs no apptainer at all (none is on PATH here)."""
    workdir = workdir_with(tmp_path, None)
    env = environment(tmp_path, apptainer=False)
    result = snakemake(workdir, env, "-n")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert job_counts(output)["train"] == 2
    assert {image for image, _ in rules(output).values()} == {"-"}


def test_an_image_without_apptainer_on_the_host_stops_the_dry_run(tmp_path):
    workdir = workdir_with(tmp_path, IMAGE)
    result = snakemake(workdir, environment(tmp_path, apptainer=False), "-n")
    assert result.returncode == 1
    assert ("WorkflowError:\nThe apptainer or singularity command has to be available in order to use "
            "apptainer/singularity integration.") in result.stdout + result.stderr


def test_the_apptainer_profile_is_the_slurm_profile_plus_apptainer():
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.v8+.yaml").read_text())
    apptainer = yaml.safe_load(PROFILE.read_text())
    assert apptainer == {**slurm, "software-deployment-method": "apptainer", "apptainer-args": apptainer["apptainer-args"]}
    # no --cleanenv: a job needs SLURM's CUDA_VISIBLE_DEVICES; no --bind of a site path that a node may lack
    assert "--nv" in profile_args() and not {"--cleanenv", "-e", "--bind", "-B"} & set(profile_args())


# --- the image recipes ---

DEF = (REPO / "containers" / "slidescan.def").read_text()
DOCKERFILE = (REPO / "containers" / "Dockerfile").read_text()
TORCH_INDEX = "https://download.pytorch.org/whl/cu128"


def pip_installs(text: str) -> list[str]:
    """Every `pip install ...` command of a recipe, comments left out."""
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return [re.sub(r"^RUN\s+", "", line) for line in lines if re.match(r"^(RUN\s+)?pip install ", line)]


def project_extras(install: str) -> set[str]:
    match = re.search(r"/opt/slidescan\[([\w,-]+)\]", install)
    return set(match.group(1).split(",")) if match else set()


@pytest.mark.parametrize("recipe", [DEF, DOCKERFILE], ids=["slidescan.def", "Dockerfile"])
def test_the_recipes_install_cuda_torch_then_the_project_with_its_cluster_extras(recipe):
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    torch, project = pip_installs(recipe)
    # torch alone and first, from the CUDA index (else the project's torch>=2.2 would bring PyPI's build)
    assert torch == f"pip install torch --index-url {TORCH_INDEX}"
    extras = project_extras(project)
    assert extras == {"slurm", "inputs", "constituents"}
    assert extras <= set(pyproject["project"]["optional-dependencies"])
    # the base's Python satisfies the project's
    base = re.search(r"^(?:From:|FROM)\s*python:(\d+)\.(\d+)-slim-bookworm$", recipe, re.M)
    assert base and (int(base.group(1)), int(base.group(2))) >= (3, 11)
    assert pyproject["project"]["requires-python"] == ">=3.11"


def test_both_recipes_copy_the_same_files_and_nothing_else():
    files = re.search(r"^%files\n(.*?)^%", DEF, re.M | re.S).group(1)
    copied_def = {line.split()[0] for line in files.splitlines() if line.strip() and not line.strip().startswith("#")}
    copied_docker = {src for line in DOCKERFILE.splitlines() if line.startswith("COPY ")
                     for src in line.split()[1:-1]}
    assert copied_def == copied_docker == {"pyproject.toml", "README.md", "src"}
    assert DEF.split("From:")[1].split()[0] == DOCKERFILE.split("FROM")[1].split()[0]
    # the Docker build context: everything is left out but what is copied (results/, .venv, .snakemake, data)
    ignore = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*"
    assert {line[1:] for line in ignore if line.startswith("!")} == copied_docker


def test_the_copied_files_are_enough_to_build_the_project(tmp_path):
    """What the recipes copy builds a wheel of slidescan with its package data (the schema), offline."""
    pytest.importorskip("setuptools")  # the build backend, from this venv (no network)
    source = tmp_path / "opt-slidescan"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                             "-q", "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    import zipfile

    (wheel,) = (tmp_path / "wheel").glob("slidescan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "slidescan/config.schema.yaml" in names and "slidescan/cli.py" in names
