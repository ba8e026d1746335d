"""The cluster path against a real SLURM controller: a one-node Slurm cluster with accounting and two
fake GPUs, started by tools/local_slurm.py (root on Debian; the CI machine is one). No mocks: the
scans go through profiles/slurm and snakemake-executor-plugin-slurm, with sbatch, sacct and scancel.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from test_workflow import TINY, make_workdir

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

SCAN = {**TINY, "scan": "slurm", "injections": [400], "methods": ["cwola-nn"]}
# short status checks, so the test does not wait 40 s before the first sacct
# (and lift the profile's cap of one status query per 10 s)
FAST_POLL = ["--slurm-init-seconds-before-status-checks", "1", "--max-status-checks-per-second", "10"]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: .*?/slurm_logs/rule_(\w+?)/(?:([^/]+)/)?\d+\.log\)")
ARRAY = re.compile(r"Submitted array job with Snakemake IDs ([\d,]+) and SLURM job ID (\d+)\. The individual task IDs are 1-\d+")
JOB_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", re.M)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        reason = ("the real-SLURM tests need root on Debian: tools/local_slurm.py installs slurm-wlm, munge, "
                  "slurmdbd and MariaDB and starts a one-node cluster")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    started = subprocess.run([sys.executable, str(REPO / "tools" / "local_slurm.py"), "start"],
                             capture_output=True, text=True, timeout=900)
    assert started.returncode == 0, started.stdout + started.stderr
    return started.stdout


def snakemake_slurm(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", *FAST_POLL, *args],
                          cwd=workdir, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)


def wildcard_values(joined: str) -> str:
    """Wildcard values joined by "_" without the empty ones: a one-model scan's ``signal`` wildcard is empty,
    which the SLURM plugin writes as a doubled "_" in the log path."""
    return "_".join(part for part in joined.split("_") if part)


def submitted_jobs(output: str) -> list[tuple[str, str, str]]:
    """(rule, wildcards, SLURM job id) of every job the run submitted to SLURM; an array's task is
    ``<array id>_<task>``, its rule and wildcards read from Snakemake's job block."""
    jobs = [(m.group(2), wildcard_values(m.group(3) or ""), m.group(1)) for m in SUBMITTED.finditer(output)]
    blocks = {}
    for block in JOB_BLOCK.finditer(output):
        fields = dict(re.findall(r"^    (\w+): (.*)$", block.group(2), re.M))
        values = "_".join(v.split("=", 1)[1] for v in fields.get("wildcards", "").split(", ") if v)
        values = wildcard_values(values)
        blocks[fields["jobid"]] = (block.group(1), values)
    for array in ARRAY.finditer(output):
        for task, snakemake_id in enumerate(array.group(1).split(","), 1):
            jobs.append((*blocks[snakemake_id], f"{array.group(2)}_{task}"))
    return jobs


def array_submissions(output: str) -> int:
    return len(ARRAY.findall(output))


def local_jobs(output: str) -> list[str]:
    return re.findall(r"^localrule (\w+):$", output, re.M)


def sacct_states(job_ids: list[str]) -> dict[str, str]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)],
                         capture_output=True, text=True, check=True).stdout
    return dict(line.split("|")[:2] for line in out.splitlines() if line)


# the training jobs get both fake GPUs and drive two batched models at once ("cpu,cpu": a CPU build of torch
# cannot use the fake GPUs, the bookkeeping is the same)
TWO_DEVICES = {**SCAN, "cluster": {"gpus": 2},
               "classifier": {**TINY["classifier"], "nn": {**TINY["classifier"]["nn"], "device": "cpu,cpu"}}}


def test_slurm_scan_reruns_exactly_the_failed_fold(cluster, tmp_path):
    workdir = make_workdir(tmp_path, TWO_DEVICES)
    results = workdir / "results" / "slurm"
    failing = "*/train/w01/cwola-nn/inj400_seed1/fold1.h5"
    started = time.monotonic()
    # no retries here: the forced failure is permanent (the retry path is the preemption test's)
    # site settings from the environment, as a user's shell profile would set them
    site = {"SLIDESCAN_SLURM_PARTITION": "debug", "SLIDESCAN_SLURM_QOS": "normal"}
    first = snakemake_slurm(workdir, "--retries", "0", env={"SLIDESCAN_FAIL_JOBS": failing, **site})
    first_seconds = time.monotonic() - started
    output = first.stdout + first.stderr
    assert first.returncode != 0, output[-3000:]
    jobs = submitted_jobs(output)
    # prepare_data, inject, 2 splits, one training job per window (2 folds each); the scan's bump hunt
    # (both windows in one job) waits for the failed one
    assert sorted(rule for rule, _, _ in jobs) == sorted(["prepare_data", "inject", "split", "split", "train",
                                                          "train"]), jobs
    assert array_submissions(output) == 1  # the two splits went as one job array (profiles/slurm)
    states = sacct_states([job_id for _, _, job_id in jobs])
    placed = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "Partition,QOS", "-j",
                             ",".join(job_id for _, _, job_id in jobs)], capture_output=True, text=True).stdout
    assert set(placed.split()) == {"debug|normal"}, placed
    trained = [job_id for rule, _, job_id in jobs if rule == "train"]
    allocated = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "AllocTRES", "-j", ",".join(trained)],
                               capture_output=True, text=True, check=True).stdout.split()
    assert all("cpu=2" in tres and "gres/gpu=2" in tres for tres in allocated), allocated
    # the window whose two folds both trained: one batched model per device, on the GPUs SLURM gave the job
    job_log = (results / "logs/train/w00/cwola-nn/inj400.log").read_text()
    assert re.search(r"^2 folds as 2 batched models on 2 devices \(cpu, cpu; CUDA_VISIBLE_DEVICES=0,1\)$", job_log, re.M), \
        job_log
    assert sorted(re.findall(r"^model (\d) of 2 on cpu: 1 folds", job_log, re.M)) == ["1", "2"], job_log
    failed = [(rule, wc) for rule, wc, job_id in jobs if states[job_id] != "COMPLETED"]
    assert failed == [("train", "w01_cwola-nn_400")], states
    assert not (results / "train/w01/cwola-nn/inj400_seed1/fold1.h5").exists()
    # the failed job's other fold is kept: it is not a declared output, so Snakemake does not delete it
    for done in ("train/w01/cwola-nn/inj400_seed1/fold0.h5", "train/w00/cwola-nn/inj400_seed1/fold1.h5",
                 "scores/w00/cwola-nn/inj400_seed1.h5"):
        assert (results / done).exists(), done

    status = subprocess.run([sys.executable, "-m", "slidescan.cli", "status", "--workdir", str(workdir),
                             "--profile", "profiles/slurm"], capture_output=True, text=True)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "4 training folds: 3 done, 1 failed, 0 interrupted, 0 missing" in status.stdout
    assert "failed      window w01 method cwola-nn injection 400 seed 1 fold 1: RuntimeError: forced failure" \
        in status.stdout
    assert "slidescan run --configfile config/config.yaml --profile profiles/slurm" in status.stdout

    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()
              and not {"logs", "checkpoints"} & set(p.parts)}
    started = time.monotonic()
    second = snakemake_slurm(workdir)
    rerun_seconds = time.monotonic() - started
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    rerun = submitted_jobs(output)
    # exactly the failed fold's training job and what depends on it went to SLURM; the rest of its
    # dependents are local; inside the job only the failed fold was trained
    assert sorted((rule, wc) for rule, wc, _ in rerun) == [("bumphunt", "cwola-nn_400_1"),
                                                          ("train", "w01_cwola-nn_400")]
    job_log = (results / "logs/train/w01/cwola-nn/inj400.log").read_text().splitlines()
    assert [line.split(" (")[0] for line in job_log] == [
        "seed 1 fold 0: kept, finished earlier with the same data and settings", "seed 1 fold 1: training"]
    assert set(sacct_states([job_id for _, _, job_id in rerun]).values()) == {"COMPLETED"}
    assert sorted(local_jobs(output)) == sorted(["scan", "plot_scan", "calibration", "sensitivity", "performance",
                                                 "loss_curves", "jobs", "methods_overview", "all"])
    changed = {p for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert changed == set(), f"finished outputs were rewritten: {changed}"
    assert (results / "pvalue_scan.csv").exists()
    print(f"SLURM rerun test: first run {len(jobs)} SLURM jobs in {first_seconds:.0f} s (1 failed); "
          f"rerun {len(rerun)} SLURM jobs + {len(local_jobs(output))} local in {rerun_seconds:.0f} s")


PREEMPT = {**SCAN, "scan": "preempt", "windows": {**TINY["windows"], "last_sr_lo": 3.1},
           "classifier": {"nn": {"members": 4, "epochs": 60, "batch_size": 32, "n_best": 1}}}


def wait_for(what: str, test, seconds: float, process: subprocess.Popen | None = None):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = test()
        if value:
            return value
        if process is not None and process.poll() is not None:
            pytest.fail(f"snakemake exited with {process.returncode} while waiting for {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def epochs_in(log: Path) -> int:
    return len(re.findall(r"^epoch \d+/60", log.read_text(), re.M)) if log.exists() else 0


def sacct_runs(job_id: str) -> list[tuple[str, str, str]]:
    """(state, start, end) of every run of a job, requeued runs included (``sacct -D``)."""
    out = subprocess.run(["sacct", "-n", "-X", "-D", "-P", "-o", "State,Start,End", "-j", job_id],
                         capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def test_slurm_preempted_fold_is_requeued_once_and_a_cancelled_one_retried(cluster, tmp_path):
    """A training job preempted by a higher-priority partition is requeued by SLURM under the same job id
    and resumes from its checkpoint, without a second submission by Snakemake (no copy runs beside
    it); the same job, scancel'ed later, is resubmitted by Snakemake's retry and resumes again."""
    workdir = make_workdir(tmp_path, PREEMPT)
    results = workdir / "results" / "preempt"
    fold_log = results / "logs/train/w00/cwola-nn/inj400_seed1/fold0.log"
    output_path = tmp_path / "snakemake.out"
    with open(output_path, "w") as out:
        run = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", *FAST_POLL],
                               cwd=workdir, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            def training_jobs():
                return [j for r, wc, j in submitted_jobs(output_path.read_text())
                        if r == "train" and wc == "w00_cwola-nn_400"]

            job_id = wait_for("the fold's SLURM job", lambda: training_jobs() and training_jobs()[0], 300, run)
            wait_for("5 finished epochs", lambda: epochs_in(fold_log) >= 5, 300, run)
            # a job of the higher-priority partition that needs the whole node preempts the training job
            urgent = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "--exclusive", "-t", "2",
                                     "-o", str(tmp_path / "urgent.out"), "--wrap", "sleep 2"],
                                    capture_output=True, text=True, check=True).stdout.strip()
            wait_for("the preemption", lambda: [r for r in sacct_runs(job_id) if r[0] == "PREEMPTED"], 120, run)
            preempted_at = epochs_in(fold_log)
            # SLURM holds a requeued job back for about two minutes (its begin time); release it now
            wait_for("the preemptor to end", lambda: sacct_states([urgent]).get(urgent) == "COMPLETED", 120, run)
            subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)
            wait_for("the requeued run to train on", lambda: fold_log.read_text().count("=== attempt ") == 2
                     and epochs_in(fold_log) >= preempted_at + 3, 300, run)
            subprocess.run(["scancel", job_id], check=True)
            rc = run.wait(timeout=600)
        finally:
            if run.poll() is None:
                run.send_signal(2)  # SIGINT: snakemake cancels its SLURM jobs
                run.wait(timeout=120)
    output = output_path.read_text()
    assert rc == 0, output[-3000:]
    attempts = training_jobs()
    # the preemption cost no submission: SLURM ran the same job again; the scancel cost one (the retry)
    assert len(attempts) == 2 and attempts[0] == job_id, attempts
    runs = sacct_runs(job_id)
    assert [state for state, _, _ in runs] == ["PREEMPTED", "CANCELLED by 0"], runs
    assert runs[0][2] <= runs[1][1], f"the requeued run started before the preempted one ended: {runs}"
    assert sacct_states([attempts[1]])[attempts[1]] == "COMPLETED"
    # the fold's log keeps all three runs; each later one resumed where the one before had stopped
    log = fold_log.read_text()
    runs_logged = log.split("=== attempt ")[1:]
    assert len(runs_logged) == 3, log
    last_epoch = 0
    for number, text in enumerate(runs_logged):
        epochs = [int(e) for e in re.findall(r"^epoch (\d+)/60", text, re.M)]
        if number:
            resumed = int(re.search(r"^resumed from checkpoint \S+ after epoch (\d+)$", text, re.M).group(1))
            # the epoch logged last may have been killed before its checkpoint was written
            assert last_epoch - 1 <= resumed <= last_epoch, (number, resumed, last_epoch)
            assert epochs[0] == resumed + 1, (number, epochs[:3])
        assert epochs == list(range(epochs[0], epochs[0] + len(epochs))), epochs
        last_epoch = epochs[-1]
    assert last_epoch == 60
    assert (results / "pvalue_scan.csv").exists()
    print(f"preemption test: preempted after {preempted_at} logged epochs, requeued as the same job {job_id} "
          f"and resumed; scancel'ed, retried as job {attempts[1]}, resumed and finished epoch 60")


def test_launch_runs_the_head_as_a_slurm_job_and_status_sees_it(cluster, tmp_path):
    # its training jobs share a GPU: a shard each (Slurm's gres/shard) instead of a whole GPU
    workdir = make_workdir(tmp_path, {**SCAN, "scan": "launched", "cluster": {"gpu_shards": 1}})
    cli = [sys.executable, "-m", "slidescan.cli"]
    launched = subprocess.run([*cli, "launch", "--cpus", "1", "--mem-gb", "2", "--", *FAST_POLL], cwd=workdir,
                              capture_output=True, text=True, timeout=120)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    job_id = re.search(r"SLURM job (\d+)", launched.stdout).group(1)
    log = Path(re.search(r"its log: +(\S+)", launched.stdout).group(1))
    assert log.parent == workdir / "results/launched/launch"

    def status():
        return subprocess.run([*cli, "status"], cwd=workdir, capture_output=True, text=True).stdout

    running = wait_for("the head job to run", lambda: (s := status()) and f"head job {job_id}" in s
                       and ": RUNNING" in s and s, 120)
    assert "training folds" in running
    final = wait_for("the head job to end", lambda: (s := status()) and (": COMPLETED" in s or ": FAILED" in s)
                     and s, 600)
    assert f"head job {job_id}" in final and ": COMPLETED" in final, final + log.read_text()[-3000:]
    assert "4 training folds: 4 done, 0 failed" in final
    head_log = log.read_text()
    assert "Finished jobid: 0 (Rule: all)" in head_log
    assert (workdir / "results/launched/report.html").exists()
    trained = [job_id for rule, _, job_id in submitted_jobs(head_log) if rule == "train"]
    allocated = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "AllocTRES", "-j", ",".join(trained)],
                               capture_output=True, text=True, check=True).stdout.split()
    assert len(trained) == 2 and all("gres/shard=1" in tres and "gres/gpu" not in tres for tres in allocated), allocated
