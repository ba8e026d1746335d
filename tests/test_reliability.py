"""Bad input and hard failures, as a user meets them: clear errors, a status that sees every failure, a report
and a rerun that work after a crash, and finished results that are never overwritten by surprise."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from slidescan import data
from slidescan.config import ConfigError, load_settings
from slidescan.settings import ScanSettings
from slidescan.stages.data import prepare_data

from test_data import _lhco_table
from test_workflow import TINY, make_workdir, snakemake

SMALL = {**TINY, "scan": "small", "methods": ["cwola-nn"], "injections": [400],
         "windows": {**TINY["windows"], "last_sr_lo": 3.1}}


def cli(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cut = args.index("--") if "--" in args else len(args)
    return subprocess.run([sys.executable, "-m", "slidescan.cli", *args[:cut], "--workdir", str(workdir), *args[cut:]],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def checksums(results: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(results.rglob("*"))
            if p.is_file() and "logs" not in p.parts}


# --- inputs ---


def lhco_settings(path: Path, **data_extra) -> ScanSettings:
    return ScanSettings.from_config({
        "scan": "lhco", "data": {"source": "lhco_h5", "lhco_h5": {"path": str(path)}, **data_extra},
        "injections": [0], "methods": ["cwola-nn"],
        "windows": {"first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.1, "sb_width": 0.4,
                    "min_events": 1}})


@pytest.mark.parametrize("column,value", [("tau2j1", np.nan), ("tau1j2", np.inf), ("pxj1", -np.inf)])
def test_non_finite_inputs_are_rejected_with_file_column_and_count(tmp_path, column, value):
    table = _lhco_table(n=500)
    table.loc[[3, 7, 11], column] = value
    path = tmp_path / "events.h5"
    table.to_hdf(path, key="df", format="table")
    out = tmp_path / "out.h5"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: 3 of 500 events have non-finite values \(NaN or "
                                         rf"inf\) in column\(s\) {column} \(3\); fix the file, or set "
                                         r"data.non_finite: drop"):
        prepare_data(lhco_settings(path), out)
    assert not out.exists()


def test_non_finite_inputs_can_be_dropped_and_are_counted(tmp_path):
    table = _lhco_table(n=500)
    table.loc[[3, 7], "tau2j1"] = np.nan
    table.loc[[7, 20], "mj2"] = np.inf
    path = tmp_path / "events.h5"
    table.to_hdf(path, key="df", format="table")
    lines = []
    prepare_data(lhco_settings(path, non_finite="drop"), tmp_path / "out.h5", log=lines.append)
    assert lines == [f"{path}: dropped 3 of 500 events with non-finite values (NaN or inf) in column(s) tau2j1 (2), "
                     "mj2 (2) (data.non_finite: drop)"]
    from slidescan.io import read_table

    n = sum(len(read_table(tmp_path / "out.h5", t)) for t in ("background", "reference_background",
                                                              "signal_pool", "reference_signal"))
    assert n == 497


def test_the_cathode_npy_reader_checks_finiteness_too(tmp_path):
    array = np.random.default_rng(1).random((50, 6))
    array[:, 5] = array[:, 5] < 0.5  # labels are 0 or 1
    array[4, 2] = np.nan
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ValueError, match=r"x.npy: 1 of 50 events have non-finite values \(NaN or inf\) in column\(s\) "
                                         r"delta_mj \(1\)"):
        data.read_cathode_npy(tmp_path / "x.npy")
    assert len(data.read_cathode_npy(tmp_path / "x.npy", non_finite="drop", log=lambda s: None)) == 49


@pytest.mark.parametrize("content", [b"", b"this is not an HDF5 file at all" * 10])
def test_a_zero_byte_or_corrupt_h5_is_named_in_one_line(tmp_path, content):
    path = tmp_path / "events.h5"
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        data.read_lhco_h5(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not a readable pandas HDF5 table (") and "\n" not in message
    assert err.value.__cause__ is None  # no 200-line pytables traceback chained behind it


def test_windows_outside_the_data_or_with_too_few_events_are_named(tmp_path):
    settings = ScanSettings.from_config({**SMALL, "windows": {**SMALL["windows"], "last_sr_lo": 5.5, "step": 0.4}})
    with pytest.raises(ValueError, match=r"^the synthetic background \(data.synthetic\): window w05 \(sidebands "
                                         r"4.5-6.1 TeV\) reaches beyond the data's mjj range 2.5-5.99\d TeV; window w06"):
        prepare_data(settings, tmp_path / "out.h5")
    few = ScanSettings.from_config({**SMALL, "windows": {**SMALL["windows"], "min_events": 20000}})
    with pytest.raises(ValueError, match=r"window w00 \(SR 3.1-3.5 TeV\) has \d+ events in its SR, \d+ events in its "
                                         r"high sideband, fewer than windows.min_events \(20000\)"):
        prepare_data(few, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_config_errors_name_the_file_and_the_key_first(tmp_path):
    workdir = make_workdir(tmp_path, SMALL)
    (workdir / "typo.yaml").write_text("scan: small\nmethod: [cwola-nn]\n")
    (workdir / "broken.yaml").write_text("scan: small\nmethods: [cwola-nn\n")
    (workdir / "wrong.yaml").write_text("scan: small\nclassifier: {nn: {epochs: -3}}\n")
    typo = cli(workdir, "run", "--configfile", "typo.yaml")
    assert typo.returncode == 1 and typo.stderr.splitlines()[0].startswith(
        "slidescan: typo.yaml: (top level): unknown key(s) ['method'] (did you mean 'methods' for 'method'?)")
    broken = cli(workdir, "run", "--configfile", "broken.yaml")
    assert broken.returncode == 1 and re.match(r"slidescan: \S+broken.yaml:3:1: YAML syntax error: expected ',' or "
                                               r"']'", broken.stderr)
    wrong = cli(workdir, "status", "--configfile", "wrong.yaml")
    assert wrong.returncode == 1 and wrong.stderr.startswith(
        "slidescan: wrong.yaml: classifier.nn.epochs: -3 is less than the minimum of 1")
    assert len((typo.stderr + broken.stderr + wrong.stderr).splitlines()) == 3  # no schema dump, no traceback
    with pytest.raises(ConfigError, match=r"windows.min_events: 0 is less than the minimum of 1"):
        ScanSettings.from_config({**SMALL, "windows": {**SMALL["windows"], "min_events": 0}})


# --- the workflow: status, report, rerun ---


@pytest.mark.workflow
def test_a_failed_data_job_is_listed_by_status_and_report_says_nothing_is_there_yet(tmp_path):
    table = _lhco_table(n=500)
    table.loc[[3, 7, 11], "tau2j1"] = np.nan
    workdir = make_workdir(tmp_path, {**SMALL, "data": {"source": "lhco_h5",
                                                        "lhco_h5": {"path": "events.h5"}}})
    table.to_hdf(workdir / "events.h5", key="df", format="table")
    run = snakemake(workdir)
    assert run.returncode != 0
    status = cli(workdir, "status")
    assert status.returncode == 1
    assert ("failed      job prepare_data: ValueError: events.h5: 3 of 500 events have non-finite values (NaN or "
            "inf) in column(s) tau2j1 (3)") in status.stdout
    assert "1 data jobs" not in status.stdout and "data jobs (prepare_data, inject, split): 0 done, 1 failed" \
        in status.stdout
    report = cli(workdir, "report")
    assert report.returncode == 1
    assert report.stderr.startswith("slidescan report: nothing to report yet for scan 'small': no job has finished")
    assert not (workdir / "results/small/summary.rst").exists() and not (workdir / "results/small/report.html").exists()


@pytest.mark.workflow
def test_after_failures_status_lists_each_and_the_report_is_partial_and_says_so(tmp_path):
    """A failed injection (larger than the signal pool) and a failed fold in one run: status names both, the
    report shows what finished and says what did not, and leaves no half-written file."""
    workdir = make_workdir(tmp_path, {**SMALL, "injections": [0, 400, 3000]})  # the pool holds 2000 signal events
    run = snakemake(workdir, env={"SLIDESCAN_FAIL_JOBS": "*/train/w00/cwola-nn/inj400_seed1/fold1.h5"})
    assert run.returncode != 0
    status = cli(workdir, "status")
    assert status.returncode == 1
    assert ("failed      job inject injection 3000 seed 1: ValueError: injection of 3000 signal events asks for more "
            "than the signal pool of ") in status.stdout and "logs/inject/inj3000_seed1.log" in status.stdout
    assert "events.h5 (data.signal_pool) holds (2000); lower the injection or give the pool more events" in status.stdout
    assert ("failed      window w00 method cwola-nn injection 400 seed 1 fold 1: RuntimeError: forced failure"
            in status.stdout)
    results = workdir / "results/small"
    report = cli(workdir, "report")
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    assert "(partial: the summary lists what has not finished" in report.stdout
    html = (results / "report.html").read_text()
    assert "No p-value scan yet" in html and "Jobs: 3 of 6 training folds done; 1 failed" in html
    assert "spectra" in html and "inj0_seed1" in html  # the scan that finished is in it
    assert sorted(p.name for p in results.iterdir() if p.name.startswith(".")) == []  # no partial file left


@pytest.mark.workflow
def test_a_head_killed_with_sigkill_is_rerun_without_a_manual_unlock(tmp_path):
    """SIGKILL (or an out-of-memory kill) of the head leaves Snakemake's lock; `slidescan run` clears it safely."""
    slow = {**SMALL, "classifier": {"nn": {"members": 2, "epochs": 40, "batch_size": 64, "n_best": 1}}}
    workdir = make_workdir(tmp_path, slow)
    fold_log = workdir / "results/small/logs/train/w00/cwola-nn/inj400_seed1/fold0.log"
    head = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "1"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(1800):
            if fold_log.exists() and len(re.findall(r"^epoch \d+/40", fold_log.read_text(), re.M)) >= 3:
                break
            time.sleep(0.1)
        os.killpg(head.pid, signal.SIGKILL)  # the head and its job die at once, as on a lost node
        head.wait(timeout=60)
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
    assert list((workdir / ".snakemake/locks").iterdir())
    status = cli(workdir, "status")
    assert status.returncode == 1 and "STALE LOCK: stale Snakemake lock" in status.stdout
    assert "`slidescan run` clears it before it starts" in status.stdout
    plain = snakemake(workdir)  # what a plain rerun meets
    assert plain.returncode != 0 and "LockException" in plain.stdout + plain.stderr
    rerun = cli(workdir, "run", "--no-report")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "stale Snakemake lock" in rerun.stdout and "clearing it" in rerun.stdout
    log = fold_log.read_text()
    assert log.count("=== attempt ") == 2  # the fold log keeps the killed attempt's epochs
    resumed = int(re.search(r"^resumed from checkpoint \S+ after epoch (\d+)$", log, re.M).group(1))
    assert resumed >= 2 and (workdir / "results/small/pvalue_scan.csv").exists()
    assert cli(workdir, "status").returncode == 0


@pytest.mark.workflow
def test_new_settings_under_the_same_scan_name_stop_before_anything_is_overwritten(tmp_path):
    workdir = make_workdir(tmp_path, SMALL)
    first = cli(workdir, "run", "--no-report")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    results = workdir / "results/small"
    recorded = yaml.safe_load((results / "scan_settings.yaml").read_text())
    assert recorded["classifier"]["nn"]["epochs"] == 2
    before = checksums(results)
    changed = {**SMALL, "classifier": {**SMALL["classifier"], "nn": {**SMALL["classifier"]["nn"], "epochs": 3}},
               "bumphunt": {"efficiencies": [1.0, 0.1]}}
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(changed))
    refused = cli(workdir, "run", "--no-report")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[:3] == [
        f"slidescan: scan 'small' in {results} was made with other settings; this run would retrain and overwrite its "
        "results:", "  bumphunt.efficiencies: [1.0, 0.1, 0.01] -> [1.0, 0.1]", "  classifier.nn.epochs: 2 -> 3"]
    assert "Give this scan a new name" in refused.stderr and "--force" in refused.stderr
    assert checksums(results) == before
    # more seeds extend the scan: no refusal; where jobs run is not a setting of the results
    grown = {**SMALL, "seeds": [1, 2], "cluster": {"partition": "gpu"}, "classifier": {**SMALL["classifier"], "nn": {
        **SMALL["classifier"]["nn"], "threads": 2}}}
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(grown))
    from slidescan import record

    assert record.changes(recorded, load_settings(workdir).config) == []
    extended = cli(workdir, "run", "--no-report")
    assert extended.returncode == 0, extended.stdout[-3000:] + extended.stderr[-3000:]
    seed1 = {p: c for p, c in before.items() if "inj400_seed1" in p.parts and "train" in p.parts}
    assert seed1 and {p: checksums(results)[p] for p in seed1} == seed1  # the finished folds are kept as they were
    other = {**grown, "bumphunt": {"efficiencies": [1.0, 0.1]}}  # a cheap change: only the bump hunts rerun
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(other))
    forced = cli(workdir, "run", "--no-report", "--force")
    assert forced.returncode == 0 and "--force: replacing the results of scan 'small'" in forced.stdout
    assert yaml.safe_load((results / "scan_settings.yaml").read_text())["bumphunt"]["efficiencies"] == [1.0, 0.1]


# --- checkpoints from elsewhere ---


def test_a_tree_checkpoint_not_signed_by_this_user_is_never_unpickled(tmp_path, monkeypatch):
    import pickle

    from slidescan import checkpoint
    from slidescan.backends.bdt import BDTSettings, train_bdt_ensemble

    monkeypatch.setenv(checkpoint.KEY_ENV, str(tmp_path / "key"))
    g = np.random.default_rng(0)
    x, y = g.normal(size=(600, 3)), (g.random(600) < 0.5).astype(float)
    settings = BDTSettings.from_config({"members": 2, "max_iter": 5})
    ckpt = tmp_path / "fold.ckpt"
    train_bdt_ensemble(x, y, None, settings, [1, 2], checkpoint=ckpt, log=lambda s: None)
    lines = []
    train_bdt_ensemble(x, y, None, settings, [1, 2], checkpoint=ckpt, log=lines.append)
    assert lines[0] == f"resumed from checkpoint {ckpt} with 2 of 2 members done"

    class Payload:  # what a malicious pickle would run on load
        def __reduce__(self):
            return (Path(tmp_path / "pwned").write_text, ("ran",))

    ckpt.write_bytes(pickle.dumps({"slidescan": {"fingerprint": "x", "members": [Payload()]}}))
    lines.clear()
    train_bdt_ensemble(x, y, None, settings, [1, 2], checkpoint=ckpt, log=lines.append)
    assert lines[0].startswith(f"checkpoint {ckpt} is not signed by this user's slidescan key")
    assert not (tmp_path / "pwned").exists()
    # another user's key: the same
    monkeypatch.setenv(checkpoint.KEY_ENV, str(tmp_path / "other-key"))
    train_bdt_ensemble(x, y, None, settings, [1, 2], checkpoint=tmp_path / "b.ckpt", log=lambda s: None)
    monkeypatch.setenv(checkpoint.KEY_ENV, str(tmp_path / "key"))
    lines.clear()
    train_bdt_ensemble(x, y, None, settings, [1, 2], checkpoint=tmp_path / "b.ckpt", log=lines.append)
    assert "is not signed by this user's slidescan key" in lines[0]


def test_status_reads_the_last_attempt_of_a_fold_log(tmp_path):
    from slidescan.report.status import report

    workdir = make_workdir(tmp_path, SMALL)
    log = workdir / "results/small/logs/train/w00/cwola-nn/inj400_seed1/fold0.log"
    log.parent.mkdir(parents=True)
    log.write_text("=== attempt 2026-12-01 10:00:00 ===\nTraceback (most recent call last):\n  x\n"
                   "RuntimeError: CUDA out of memory\n=== attempt 2026-12-01 11:00:00 ===\ncheckpoint: /nope.ckpt\n"
                   "resumed from checkpoint /nope.ckpt after epoch 1\nepoch 2/2: train loss 0.6 (1.00 s)\n")
    text, counts = report(workdir, Path("config/config.yaml"), "profiles/local")
    assert "interrupted window w00 method cwola-nn injection 400 seed 1 fold 0: stopped after 1 logged epochs" in text
    assert counts["failed"] == 0
    # a training job that failed before any fold had a log of its own: its folds are failed, with its error
    job_log = workdir / "results/small/logs/train/w00/cwola-nn/inj400.log"
    job_log.write_text("Traceback (most recent call last):\n  x\nValueError: method cwola-nn, fold 0: empty training "
                       "sample (0 label-1 events, 812 reference events); widen the window or add events\n")
    text, counts = report(workdir, Path("config/config.yaml"), "profiles/local")
    assert ("failed      window w00 method cwola-nn injection 400 seed 1 fold 1: ValueError: method cwola-nn, fold 0: "
            "empty training sample") in text and str(job_log) in text
    assert counts["failed"] == 1
