"""Plausible mistakes that used to end with exit code 0 and wrong numbers (issue 29): each is now refused with the
file, the key or the column, and the values, or marked where the number is only a bound."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from slidescan import data
from slidescan.data import sources
from slidescan.config import ConfigError
from slidescan.io import read_table
from slidescan.settings import ScanSettings
from slidescan.stages.data import prepare_data

from test_data import _lhco_table
from test_workflow import TINY

SMALL = {**TINY, "scan": "small", "methods": ["cwola-nn"], "injections": [400],
         "windows": {**TINY["windows"], "last_sr_lo": 3.1}}
WINDOWS = {"first_sr_lo": 3.3, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.1, "sb_width": 0.4, "min_events": 1}


def lhco(path: Path, injections=(0,), methods=("cwola-nn",), **data_extra) -> ScanSettings:
    return ScanSettings.from_config({
        "scan": "lhco", "data": {"source": "lhco_h5", "lhco_h5": {"path": str(path)}, **data_extra},
        "injections": list(injections), "methods": list(methods), "windows": WINDOWS})


def write_lhco(tmp_path: Path, table: pd.DataFrame) -> Path:
    path = tmp_path / "events.h5"
    table.to_hdf(path, key="df", format="table")
    return path


# --- labels ---


@pytest.mark.parametrize("value,shown", [(2.0, "2"), (0.5, "0.5"), (257.0, "257"), (-1.0, "-1")])
def test_a_label_that_is_not_0_or_1_is_refused_with_file_column_count_and_values(tmp_path, value, shown):
    table = _lhco_table(n=500)
    table.loc[table.index[:40], "label"] = value
    path = write_lhco(tmp_path, table)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: column 'label' must be 0 \(background\) or 1 "
                                         rf"\(signal\); 40 of 500 events have other values: {re.escape(shown)}$"):
        data.read_lhco_h5(path)


def test_text_labels_name_the_file_and_the_column(tmp_path):
    table = _lhco_table(n=300)
    table["label"] = np.where(table["label"] > 0, "s", "b")
    path = write_lhco(tmp_path, table)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: column 'label' holds text \(e.g. 'b', 's'\), "
                                         r"not numbers"):
        data.read_lhco_h5(path)
    parquet = tmp_path / "t.parquet"
    pd.DataFrame({"mjj": np.full(10, 3.5), "mj1": 0.1, "delta_mj": 0.1, "tau21_j1": 0.5, "tau21_j2": ["x"] * 10,
                  "label": 0}).to_parquet(parquet)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(parquet))}: column 'tau21_j2' holds text \(e.g. 'x'\), "
                                         r"not numbers$"):
        sources.read_event_table(parquet, None, {"mjj": "mjj", "label": "label", "tau21_j2": "tau21_j2"})
    with pytest.raises(ValueError, match=r"t.parquet: column 'tau21_j2' \(tau21_j1\) holds text"):
        sources.read_event_table(parquet, None, {"mjj": "mjj", "tau21_j1": "tau21_j2"})


def test_the_cathode_npy_reader_checks_labels_too(tmp_path):
    array = np.random.default_rng(1).random((50, 6))
    array[:, 0] = 3.5
    array[:, 5] = 0
    array[7, 5] = 2
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ValueError, match=r"x.npy: column 'label' must be 0 \(background\) or 1 \(signal\); 1 of 50 "
                                         r"events have other values: 2$"):
        data.read_cathode_npy(tmp_path / "x.npy")


def test_unlabelled_events_refuse_injections_and_truth_methods_naming_why(tmp_path):
    table = _lhco_table(n=500).drop(columns="label")
    path = write_lhco(tmp_path, table)
    # background only, no truth method: the data are read as they are (every event background)
    prepare_data(lhco(path), tmp_path / "ok.h5")
    assert len(read_table(tmp_path / "ok.h5", "signal_pool")) == 0
    # every event is the scan's: no truth reference is set apart from data that no truth method may use
    assert len(read_table(tmp_path / "ok.h5", "background")) == 500
    assert len(read_table(tmp_path / "ok.h5", "reference_background")) == 0
    for injections, methods, why in (([0, 400], ["cwola-nn"], r"injections \[400\] need labelled signal events"),
                                     ([0], ["idealized-bdt", "cwola-nn"], r"idealized-bdt needs truth labels")):
        with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: no column 'label': the events are data "
                                             rf"without truth labels, so {why}"):
            prepare_data(lhco(path, injections, methods), tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
    # a table source says so in its config: refused at configuration, before any job runs
    table_config = {**SMALL, "data": {"source": "table", "table": {"path": "t.parquet"}}}
    with pytest.raises(ConfigError, match=r"^config: data.table.label is null \(data without truth labels\), so "
                                          r"injections \[400\] need labelled signal events"):
        ScanSettings.from_config(table_config)
    with pytest.raises(ConfigError, match=r"idealized-nn needs truth labels"):
        ScanSettings.from_config({**table_config, "injections": [0], "methods": ["idealized-nn"]})


def test_a_labelled_file_peeked_at_configuration(tmp_path):
    """`slidescan run` looks at the file's columns before anything runs: an unlabelled LHCO file with injections
    stops there, in one line, not in the prepare_data job."""
    from test_reliability import cli
    from test_workflow import make_workdir

    workdir = make_workdir(tmp_path, {**SMALL, "data": {"source": "lhco_h5", "lhco_h5": {"path": "events.h5"}}})
    _lhco_table(n=300).drop(columns="label").to_hdf(workdir / "events.h5", key="df", format="table")
    run = cli(workdir, "run")
    assert run.returncode == 1 and run.stderr.splitlines() == [
        "slidescan: config/config.yaml: data.lhco_h5.path: events.h5 has no column 'label' (data without truth "
        "labels), so injections [400] need labelled signal events; on data, run injections [0] and methods that need "
        "no truth, or add the labels"]
    assert not (workdir / "results").exists()


# --- duplicates ---


def test_duplicated_events_are_rejected_or_dropped_and_never_straddle_folds(tmp_path):
    table = _lhco_table(n=400)
    doubled = pd.concat([table, table.iloc[:150]], ignore_index=True).sample(frac=1, random_state=3)
    path = write_lhco(tmp_path, doubled)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: 150 of 550 events are exact copies of another "
                                         r"event \(first: row \d+ repeats row \d+\); remove them, or set "
                                         r"data.duplicates: drop"):
        prepare_data(lhco(path), tmp_path / "out.h5")
    lines = []
    prepare_data(lhco(path, duplicates="drop"), tmp_path / "out.h5", log=lines.append)
    assert lines == [f"{path}: dropped 150 of 550 events that are exact copies of another event "
                     "(data.duplicates: drop)"]
    tables = pd.concat([read_table(tmp_path / "out.h5", t) for t in ("background", "signal_pool",
                                                                      "reference_background", "reference_signal")])
    assert len(tables) == 400 and not tables.drop(columns="fold", errors="ignore").duplicated().any()


def test_a_table_source_checks_duplicates_too(tmp_path):
    g = np.random.default_rng(2)
    frame = pd.DataFrame({"mjj": g.uniform(2.8, 4.2, 300), "mj1": g.uniform(0.02, 0.4, 300),
                          "delta_mj": g.uniform(0, 0.3, 300), "tau21_j1": g.uniform(0, 1, 300),
                          "tau21_j2": g.uniform(0, 1, 300)})
    pd.concat([frame, frame.iloc[:5]]).to_parquet(tmp_path / "t.parquet")
    settings = ScanSettings.from_config({"scan": "t", "data": {"source": "table", "table": {"path": str(
        tmp_path / "t.parquet")}}, "injections": [0], "methods": ["cwola-nn"], "windows": WINDOWS})
    with pytest.raises(ValueError, match=r"t.parquet: 5 of 305 events are exact copies of another event"):
        prepare_data(settings, tmp_path / "out.h5")


# --- units ---


def _table_settings(path: Path, **table) -> ScanSettings:
    return ScanSettings.from_config({"scan": "t", "data": {"source": "table", "table": {"path": str(path), **table}},
                                     "injections": [0], "methods": ["cwola-nn"], "windows": WINDOWS})


def _frame(n=400, mjj_scale=1.0, mass_scale=1.0):
    g = np.random.default_rng(4)
    return pd.DataFrame({"mjj": g.uniform(2.8, 4.2, n) * mjj_scale, "mj1": g.uniform(0.02, 0.4, n) * mass_scale,
                         "delta_mj": g.uniform(0, 0.3, n) * mass_scale, "tau21_j1": g.uniform(0, 1, n),
                         "tau21_j2": g.uniform(0, 1, n)})


def test_mjj_in_the_wrong_unit_is_named_with_the_fix(tmp_path):
    path = tmp_path / "t.parquet"
    _frame().to_parquet(path)  # TeV, declared GeV
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: column 'mjj' \(mjj\) has a median of 0.0035\d* TeV "
                                         r"after conversion from GeV \(data.table.mjj_unit\), not a dijet mass: its "
                                         r"values look like TeV; set data.table.mjj_unit: TeV"):
        prepare_data(_table_settings(path, mjj_unit="GeV"), tmp_path / "out.h5")
    _frame(mjj_scale=1000).to_parquet(path)  # GeV, declared TeV (the default)
    with pytest.raises(ValueError, match=r"column 'mjj' \(mjj\) has a median of 3\d{3}(\.\d)? TeV, not a dijet mass: "
                                         r"its values look like GeV; set data.table.mjj_unit: GeV"):
        prepare_data(_table_settings(path), tmp_path / "out.h5")


def test_jet_masses_in_another_unit_than_mjj_are_named(tmp_path):
    path = tmp_path / "t.parquet"
    _frame(mass_scale=1000).to_parquet(path)  # masses in GeV, mjj in TeV
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: column 'mj1' \(mj1\) is larger than mjj in 400 of "
                                         r"400 events \(median \d+(\.\d+)? against mjj's 3.\d+\): jet masses must be in "
                                         r"TeV, like mjj"):
        prepare_data(_table_settings(path), tmp_path / "out.h5")


def test_windows_in_gev_are_refused_at_configuration():
    with pytest.raises(ConfigError, match=r"^config: windows.first_sr_lo: 3100 TeV is beyond any collider's reach: "
                                          r"windows are in TeV \(did you mean 3.1\?\)"):
        ScanSettings.from_config({**SMALL, "windows": {**SMALL["windows"], "first_sr_lo": 3100, "last_sr_lo": 3100}})


def test_windows_beyond_the_data_hint_at_units_when_off_by_a_thousand(tmp_path):
    path = tmp_path / "t.parquet"
    frame = _frame()
    frame["mjj"] *= 1e-3 * 20  # 0.06-0.08 TeV: plausible as a mass, far below the windows
    frame[["mj1", "delta_mj"]] *= 1e-3
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"reaches beyond the data's mjj range .* The data's mjj is about \d\d times "
                                         r"below the windows: are both in TeV\?$"):
        prepare_data(_table_settings(path), tmp_path / "out.h5")


# --- config ---


@pytest.mark.parametrize("name", [".", "..", "...", ".hidden"])
def test_scan_names_that_are_dots_are_refused(name):
    with pytest.raises(ConfigError, match=rf"^config: scan: {re.escape(repr(name))} does not match"):
        ScanSettings.from_config({**SMALL, "scan": name})


@pytest.mark.parametrize("key,value", [("injections", [0, 400, 400]), ("seeds", [1, 1]),
                                       ("methods", ["cwola-nn", "cwola-nn"])])
def test_duplicate_list_items_are_refused(key, value):
    with pytest.raises(ConfigError, match=rf"^config: {key}: {re.escape(str(value))} has non-unique elements$"):
        ScanSettings.from_config({**SMALL, key: value})
    with pytest.raises(ConfigError, match=r"^config: bumphunt.efficiencies: \[1.0, 0.1, 0.1\] has non-unique"):
        ScanSettings.from_config({**SMALL, "bumphunt": {"efficiencies": [1.0, 0.1, 0.1]}})


def test_a_window_grid_that_cannot_be_built_is_one_line_naming_the_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"^config: windows.last_sr_lo: 3.0 is below windows.first_sr_lo \(3.5\)"):
        ScanSettings.from_config({**SMALL, "windows": {**SMALL["windows"], "first_sr_lo": 3.5, "last_sr_lo": 3.0}})
    from test_reliability import cli
    from test_workflow import make_workdir

    workdir = make_workdir(tmp_path, {**SMALL, "windows": {**SMALL["windows"], "first_sr_lo": 3.5, "last_sr_lo": 3.0}})
    run = cli(workdir, "run")
    assert run.returncode == 1 and run.stderr.splitlines() == [
        "slidescan: config/config.yaml: windows.last_sr_lo: 3.0 is below windows.first_sr_lo (3.5); the SR lower "
        "edges run from first_sr_lo up to last_sr_lo"]
    status = cli(workdir, "status")
    assert status.returncode == 1 and len(status.stderr.splitlines()) == 1


def test_a_source_without_its_section_is_a_config_error():
    with pytest.raises(ConfigError, match=r"^config: data.lhco_h5: data.source is lhco_h5, but the section "
                                          r"data.lhco_h5 \(its path\) is missing"):
        ScanSettings.from_config({**SMALL, "data": {"source": "lhco_h5"}})


# --- small things that were silently wrong ---


def test_a_toy_p0_at_its_floor_is_a_bound():
    from slidescan.stats import bump_hunt
    from slidescan.windows import Window

    g = np.random.default_rng(0)
    mjj = np.concatenate([g.uniform(2.9, 3.9, 400), g.normal(3.4, 0.02, 60)])
    scores = np.concatenate([g.random(400), np.full(60, 2.0)])
    w = Window(0, 2.9, 3.3, 3.5, 3.9)
    rows = bump_hunt(mjj, scores, w, [1.0, 0.05], 0.05, calculator="toys", ntoys=200)
    tight = rows[1]
    assert tight.p0 == pytest.approx(1 / 201) and tight.p0_bound
    assert not any(r.p0_bound for r in bump_hunt(mjj, scores, w, [1.0, 0.05], 0.05, calculator="asymptotic"))
    from slidescan.report.summary import p0_text, z_text

    assert p0_text(tight.p0, True) == "< 0.005" and z_text(tight.z, True) == "≥ 2.58"
    assert p0_text(0.0123, False) == "0.012" and z_text(2.25, False) == "2.25"


def test_sic_at_a_signal_efficiency_with_too_few_background_events_is_not_infinite():
    from slidescan.stats.metrics import sic_figures

    g = np.random.default_rng(1)
    labels = np.concatenate([np.ones(200), np.zeros(5000)])
    scores = np.concatenate([np.where(g.random(200) < 0.5, 1.0, g.random(200)), g.random(5000) * 0.9])
    out = sic_figures(labels, scores)
    assert np.isnan(out["sic_at_0.2"]) and np.isnan(out["sic_at_0.3"])  # fewer than 20 background events pass
    assert np.isfinite(sic_figures(labels, g.random(5200))["sic_at_0.2"])


def test_result_files_follow_the_umask(tmp_path):
    from slidescan.io import atomic_path, write_csv

    old = os.umask(0o022)
    try:
        write_csv(tmp_path / "a.csv", pd.DataFrame({"x": [1]}))
        assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644
        os.umask(0o007)
        with atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("x")
        assert (tmp_path / "b.txt").stat().st_mode & 0o777 == 0o660
    finally:
        os.umask(old)


def test_status_piped_into_head_is_quiet(tmp_path):
    from test_workflow import make_workdir

    workdir = make_workdir(tmp_path, {**TINY, "seeds": [1, 2, 3]})
    # head -n 0 leaves at once, so status always writes into a closed pipe (head -1 does when the text is long)
    result = subprocess.run(f"{sys.executable} -m slidescan.cli status --workdir {workdir} | head -n 0; "
                            "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True, text=True)
    assert result.stderr == "" and result.stdout == "141\n"  # quiet, and the exit code of a tool ended by SIGPIPE
    listing = subprocess.run([sys.executable, "-m", "slidescan.cli", "status", "--workdir", str(workdir)],
                             capture_output=True, text=True)
    assert listing.stdout.startswith("scan tiny: 72 training folds") and listing.returncode == 0


def _full_disk(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("a full disk is made with a 1 MiB tmpfs, which needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    return mount


def test_a_full_disk_says_so_in_the_first_line(tmp_path):
    import torch

    from slidescan import checkpoint
    from slidescan.io import write_tables

    mount = _full_disk(tmp_path)
    try:
        (mount / "filler").write_bytes(b"x" * (1024 * 1024 - 64 * 1024))
        big = pd.DataFrame({"x": np.arange(200_000, dtype=float)})
        with pytest.raises(OSError, match=rf"^\[Errno 28\] No space left on device: writing {re.escape(str(mount))}"):
            write_tables(mount / "events.h5", {"events": big})
        with pytest.raises(OSError, match=r"^\[Errno 28\] No space left on device: writing "):
            checkpoint.save(mount / "c.ckpt", "fp", {}, state_dict={"w": torch.zeros(100_000)})
        assert sorted(p.name for p in mount.iterdir()) == ["filler"]  # no half file left behind
        from slidescan import joblog

        log = ("Traceback (most recent call last):\n  File x\nOSError: [Errno 28] Unable to synchronously create file "
               "(file write failed: time = Fri Dec  4, filename = 'x', file descriptor = 5, errno = 28, error message "
               "= 'No space left on device', buf = 0x1, total write size = 96, bytes this sub-write = 96, bytes "
               "actually written = 18446744073709551615, offset = 0)\n\nThe above exception was the direct cause of "
               "the following exception:\n\nTraceback (most recent call last):\n  File y\nOSError: [Errno 28] No "
               "space left on device: writing /r/train/w00/fold1.h5\n")
        assert joblog.failure(log) == "OSError: [Errno 28] No space left on device: writing /r/train/w00/fold1.h5"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# --- status's rerun commands, and a refused run that changes nothing (real Snakemake runs) ---


def _run_printed(workdir: Path, command: str, *inserted: str) -> subprocess.CompletedProcess:
    """Run a command exactly as `slidescan status` printed it (with this Python), from the checkout."""
    words = command.split()
    program = {"snakemake": [sys.executable, "-m", "snakemake"], "slidescan": [sys.executable, "-m", "slidescan.cli"]}
    return subprocess.run(program[words[0]] + words[1:2] + list(inserted) + words[2:], cwd=workdir,
                          capture_output=True, text=True)


@pytest.mark.workflow
def test_the_rerun_commands_status_prints_work_and_a_deleted_fold_is_missing(tmp_path):
    from test_reliability import cli
    from test_workflow import make_workdir, snakemake

    workdir = make_workdir(tmp_path, SMALL)
    failed = snakemake(workdir, env={"SLIDESCAN_FAIL_JOBS": "*/train/w00/cwola-nn/inj400_seed1/fold1.h5"})
    assert failed.returncode != 0
    status = cli(workdir, "status")
    assert status.returncode == 1
    lines = status.stdout.splitlines()
    only = lines[lines.index("only these jobs, nothing downstream:") + 1].strip()
    assert only == ("snakemake results/small/scores/w00/cwola-nn/inj400_seed1.h5 --profile profiles/local "
                    "--configfile config/config.yaml")
    rerun = _run_printed(workdir, only)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    fold = workdir / "results/small/train/w00/cwola-nn/inj400_seed1"
    assert (fold / "fold1.h5").exists() and not (workdir / "results/small/pvalue_scan.csv").exists()
    # a fold result deleted after its job finished: Snakemake alone would do nothing
    (fold / "fold0.h5").unlink()
    status = cli(workdir, "status")
    assert status.returncode == 1
    assert ("missing     window w00 method cwola-nn injection 400 seed 1 fold 0: its result was deleted after its job "
            "finished") in status.stdout
    lines = status.stdout.splitlines()
    run_line = lines[lines.index("rerun exactly these jobs and what depends on them (finished folds are kept, not "
                                 "retrained):") + 1].strip()
    assert run_line == ("slidescan run --configfile config/config.yaml --profile profiles/local -- --forcerun "
                        "results/small/scores/w00/cwola-nn/inj400_seed1.h5")
    kept = (fold / "fold1.h5").read_bytes()
    rerun = _run_printed(workdir, run_line, "--no-report")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert (fold / "fold0.h5").exists() and (fold / "fold1.h5").read_bytes() == kept  # the other fold was kept
    assert (workdir / "results/small/pvalue_scan.csv").exists() and cli(workdir, "status").returncode == 0
    # the scores file deleted: missing, and a plain run remakes it from the folds
    scores = workdir / "results/small/scores/w00/cwola-nn/inj400_seed1.h5"
    scores.unlink()
    status = cli(workdir, "status")
    assert ("missing     window w00 method cwola-nn injection 400 seed 1 (scores of all folds): the scores file of "
            "its finished folds is missing; `slidescan run` makes it from them") in status.stdout


@pytest.mark.workflow
def test_a_run_refused_because_another_holds_the_scan_changes_nothing(tmp_path):
    import signal
    import time

    from test_reliability import cli
    from test_workflow import make_workdir

    slow = {**SMALL, "classifier": {"nn": {"members": 2, "epochs": 60, "batch_size": 64, "n_best": 1}}}
    workdir = make_workdir(tmp_path, slow)
    results = workdir / "results/small"
    head = subprocess.Popen([sys.executable, "-m", "slidescan.cli", "run", "--no-report", "--workdir", str(workdir)],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        log = results / "logs/train/w00/cwola-nn/inj400_seed1/fold0.log"
        for _ in range(1800):
            if log.exists() and "epoch 1/60" in log.read_text():
                break
            time.sleep(0.1)
        recorded, head_record = (results / "scan_settings.yaml").read_text(), (results / "launch/local_head.json"
                                                                                 ).read_text()
        changed = {**slow, "bumphunt": {"efficiencies": [1.0, 0.5]}}
        (workdir / "config/config.yaml").write_text(yaml.safe_dump(changed))
        second = cli(workdir, "run", "--force")
        assert second.returncode == 1
        assert second.stderr.startswith(f"slidescan: scan in {results} is being run by slidescan run, pid {head.pid}; "
                                        "nothing was changed")
        assert (results / "scan_settings.yaml").read_text() == recorded
        assert (results / "launch/local_head.json").read_text() == head_record
    finally:
        os.killpg(head.pid, signal.SIGINT)
        head.wait(timeout=120)
