"""Real snakemake runs of a tiny scan, in a copy of the workflow under tmp_path."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from slidescan.io import read_table
from slidescan.windows import region_grid

from conftest import REPO

pytestmark = pytest.mark.workflow

TINY = {
    "scan": "tiny",
    "data": {"source": "synthetic", "seed": 3,
             "synthetic": {"n_background": 40000, "signal_pool": 2000, "reference_background": 60000,
                           "reference_signal": 4000}},
    "injections": [0, 400],
    "seeds": [1],
    "windows": {"spacing": "linear", "first_sr_lo": 3.1, "last_sr_lo": 3.3, "sr_width": 0.4, "step": 0.2,
                "sb_width": 0.6},
    "folds": {"k": 2},
    "methods": ["cwola-nn", "cathode-nn", "idealized-bdt"],
    "classifier": {"nn": {"members": 2, "epochs": 2, "batch_size": 512, "n_best": 1},
                   "bdt": {"members": 2, "max_iter": 30}},
    "flow": {"transforms": 2, "hidden": [32], "epochs": 3, "batch_size": 512, "learning_rate": 0.003, "n_best": 2,
             "max_train_events": 8000, "oversampling": 2},
    "bumphunt": {"efficiencies": [1.0, 0.1, 0.01]},
}
COLUMNS = ["window", "sr_lo", "sr_hi", "method", "signal", "injection", "seed", "efficiency", "n_obs", "n_bkg",
           "n_bkg_err", "p0", "z"]


def make_workdir(path: Path, config: dict) -> Path:
    for item in ("Snakefile", "workflow", "profiles"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, path / item)
    (path / "config").mkdir()
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def snakemake(workdir: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "2", *args],
                          cwd=workdir, capture_output=True, text=True, env={**os.environ, **(env or {})})


def job_counts(dry_run_output: str) -> dict[str, int]:
    table = dry_run_output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("tiny"), TINY)
    result = snakemake(workdir, "--verbose")  # the scheduler's rounds, for the test of the head below
    assert result.returncode == 0, result.stderr[-4000:]
    (workdir / "head.log").write_text(result.stdout + result.stderr)
    return workdir


def test_dry_run_fans_out_over_every_pseudo_experiment(tmp_path):
    workdir = make_workdir(tmp_path, {**TINY, "seeds": [1, 2]})
    result = snakemake(workdir, "-n")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout + result.stderr)
    # windows x methods x injections: one training job trains all folds of all seeds as one model
    assert counts["train"] == 2 * 3 * 2
    # one bump-hunt job per scan (method x injection x seed) covers every window
    assert counts["bumphunt"] == 3 * 2 * 2
    assert "merge_folds" not in counts
    # one CATHODE flow per window x injection x seed, shared by its folds
    assert counts["sideband_flow"] == counts["split"] == 2 * 2 * 2 and counts["inject"] == 2 * 2


def test_tiny_scan_end_to_end(tiny_run):
    results = tiny_run / "results" / "tiny"
    table = pd.read_csv(results / "pvalue_scan.csv")
    assert COLUMNS == list(table.columns[: len(COLUMNS)])
    assert len(table) == 2 * 3 * 2 * 1 * 3
    assert table["fit_ok"].all()
    assert table["p0"].between(0, 0.5).all()
    assert set(table["efficiency"]) == {1.0, 0.1, 0.01}
    for method in TINY["methods"]:
        for injection in TINY["injections"]:
            png = results / "plots" / f"pvalue_scan_{method}_inj{injection}.png"
            assert png.stat().st_size > 10_000
    assert (results / "plots/spectra/idealized-bdt/inj400_seed1/w01.png").stat().st_size > 10_000
    scan = pd.read_csv(results / "bumphunt/idealized-bdt/inj400_seed1.csv")
    assert sorted(set(scan["window"])) == ["w00", "w01"] and len(scan) == 2 * 3
    assert (results / "plots/sensitivity.png").stat().st_size > 10_000
    calibration = pd.read_csv(results / "calibration.csv")
    assert sorted(calibration["method"]) == sorted(TINY["methods"])
    null = table[table["injection"] == 0]
    for _, row in calibration.iterrows():
        rows = null[null["method"] == row["method"]]
        assert row["n"] == len(rows) and row["max_z"] == pytest.approx(rows["z"].max())
        assert 0 <= row["ks_pvalue"] <= 1
    # limits: a row per method, window and cut of the background-only seed, the declared cut (0.1) drawn
    limits = pd.read_csv(results / "limits.csv")
    assert len(limits) == 3 * 2 * 3 and limits["declared"].sum() == 3 * 2
    assert set(limits.loc[limits["declared"], "efficiency"]) == {0.1}
    finite = limits[np.isfinite(limits["limit_exp_p2"])]
    assert len(finite) > len(limits) // 2 and (finite["limit_exp_m2"] < finite["limit_exp_p2"]).all()
    assert (limits["limit_obs"] > 0).all()
    # a cut that keeps too little of the signal sets no limit, and says so
    assert limits.loc[~np.isfinite(limits["limit_obs"]), "note"].str.contains("keeps too little").all()
    for method in TINY["methods"]:
        assert (results / "plots" / f"limits_{method}.png").stat().st_size > 10_000
    # every window event got exactly one out-of-fold score
    merged = read_table(results / "scores" / "w01" / "cwola-nn" / "inj400_seed1.h5", "scores")
    split = read_table(results / "split" / "w01" / "inj400_seed1.h5", "data")
    assert sorted(merged["event_id"]) == sorted(split["event_id"])
    assert (tiny_run / "results/tiny/logs/train/w00/cwola-nn/inj0_seed1/fold1.log").read_text().count("epoch ") == 2
    # the template pages: SR data vs each template of its own (not CWoLa's sidebands) at injection 0, every window,
    # with the AUC the scan table holds and the sideband flow's closure
    assert sorted(p.relative_to(results / "plots/templates").as_posix()
                  for p in (results / "plots/templates").rglob("*.png")) == \
        ["cathode-nn/w00.png", "cathode-nn/w01.png", "idealized-bdt/w00.png", "idealized-bdt/w01.png"]
    log = (results / "logs/templates/cathode-nn.log").read_text()
    auc = table[(table["method"] == "cathode-nn") & (table["injection"] == 0) & (table["window"] == "w01")]
    assert "w01: " in log and f"AUC {auc['sr_auc_vs_reference'].iloc[0]:.3f}; sideband_flow closure AUC 0." in log


def test_the_head_runs_a_scheduling_round_per_finished_job(tiny_run):
    """Snakemake's job rate limiter re-arms a timer per round, so a local head ran about n rounds a second after n
    jobs had finished (slidescan.smk.local_scheduling, switched off in the Snakefile's onstart)."""
    log = (tiny_run / "head.log").read_text()
    jobs = int(re.findall(r"^\d+ of (\d+) steps \(100%\) done", log, re.M)[-1])
    rounds = len(re.findall(r"^Ready jobs", log, re.M))
    # a round when the run starts and one when a job ends (two jobs ending together may share one)
    assert 0 < rounds <= jobs + 1, f"{rounds} scheduling rounds for {jobs} jobs"


def test_report_is_written(tiny_run):
    report = tiny_run / "results" / "tiny" / "report.html"
    result = subprocess.run([sys.executable, "-m", "slidescan.cli", "report", "--workdir", str(tiny_run)],
                            capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    html = report.read_text()
    # the summary on the landing page, from the results
    table = pd.read_csv(tiny_run / "results" / "tiny" / "pvalue_scan.csv")
    best = table[table["injection"] == 400].sort_values("z").iloc[-1]
    assert "Most significant windows at injection 400" in html
    assert f"{best.z:.2f}" in html and "Calibration (background-only pseudo-experiments)" in html
    assert "Jobs: 24 of 24 training folds done" in html
    assert "Backgrounds: every seed searches the same background events" in html
    assert report.stat().st_size > 100_000
    assert "pvalue_scan_cwola-nn_inj400.png" in html and "Local p-value scan" in html
    for caption in ("Calibration from the background-only", "Sensitivity: the local significance",
                    "Selected dijet-mass spectrum of window", "The sliding windows over the dijet-mass spectrum",
                    "ROC and significance-improvement (SIC) curves", "Max SIC (at least 20 background events",
                    "Training (solid) and validation (dashed) loss", "Sideband flow (CATHODE background model) of one window and pseudo-experiment",
                    "Every training fold and per-window model", "Upper limits at 95 % CL on the injected signal"):
        assert caption in html
    # one spectra figure per window, method and pseudo-experiment, from the per-scan bump-hunt jobs
    spectra = set(re.findall(r"Selected dijet-mass spectrum of window (\w+) for ([\w-]+)(?:\\n|\s)+\(injection (\d+)",
                             html))
    assert len(spectra) == 2 * 3 * 2 and ("w01", "idealized-bdt", "400") in spectra


def test_invalid_config_names_the_key(tmp_path):
    workdir = make_workdir(tmp_path, {**TINY, "methods": ["cwola-nn", "magic-nn"]})
    result = snakemake(workdir, "-n")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "magic-nn" in output and "methods" in output


def test_rerun_only_the_failed_fold(tmp_path):
    workdir = make_workdir(tmp_path, TINY)
    failing = "*/train/w01/cwola-nn/inj400_seed1/fold1.h5"
    first = snakemake(workdir, env={"SLIDESCAN_FAIL_JOBS": failing})
    assert first.returncode != 0
    results = workdir / "results" / "tiny"
    failed_output = results / "train/w01/cwola-nn/inj400_seed1/fold1.h5"
    assert not failed_output.exists()
    log = (results / "logs/train/w01/cwola-nn/inj400_seed1/fold1.log").read_text()
    assert "forced failure" in log
    # everything that does not depend on the failed fold is there, its sibling fold included
    others = sorted(p for p in (results / "train").rglob("*.h5"))
    assert len(others) == 2 * 3 * 2 * 2 - 1
    assert (results / "train/w01/cwola-nn/inj400_seed1/fold0.h5").exists()
    assert not (results / "scores/w01/cwola-nn/inj400_seed1.h5").exists()
    # the bump hunt of the failed fold's scan waits for it; the other scans are done
    assert (results / "bumphunt/cwola-nn/inj0_seed1.csv").exists()
    assert (results / "bumphunt/cathode-nn/inj400_seed1.csv").exists()
    assert not (results / "bumphunt/cwola-nn/inj400_seed1.csv").exists()
    assert not (results / "pvalue_scan.csv").exists()

    status = subprocess.run([sys.executable, "-m", "slidescan.cli", "status", "--workdir", str(workdir)],
                            capture_output=True, text=True)
    assert status.returncode == 1, status.stderr
    assert "24 training folds: 23 done, 1 failed, 0 interrupted, 0 missing" in status.stdout
    assert ("failed      window w01 method cwola-nn injection 400 seed 1 fold 1: RuntimeError: forced failure"
            in status.stdout)
    assert "logs/train/w01/cwola-nn/inj400_seed1/fold1.log" in status.stdout
    # the rerun target is the training job of that pseudo-experiment
    assert "results/tiny/scores/w01/cwola-nn/inj400_seed1.h5" in status.stdout

    before = {p: p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file() and "logs" not in p.parts
              and "checkpoints" not in p.parts}
    dry = snakemake(workdir, "-n")
    counts = job_counts(dry.stdout + dry.stderr)
    n_plots = len(TINY["methods"]) * len(TINY["injections"])
    # the failed fold is in the signal window: its performance and loss figures wait for it too
    assert counts == {"train": 1, "bumphunt": 1, "scan": 1, "plot_scan": n_plots,
                      "calibration": 1, "limits": 1, "sensitivity": 1, "performance": 1, "loss_curves": 1, "jobs": 1,
                      "methods_overview": 1, "all": 1}

    second = snakemake(workdir)
    assert second.returncode == 0, second.stderr[-3000:]
    changed = {p for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert changed == set(), f"finished outputs were rewritten: {changed}"
    assert failed_output.exists() and (results / "pvalue_scan.csv").exists()
    job_log = (results / "logs/train/w01/cwola-nn/inj400.log").read_text().splitlines()
    assert [line.split(" (")[0] for line in job_log] == [
        "seed 1 fold 0: kept, finished earlier with the same data and settings", "seed 1 fold 1: training"]
    status = subprocess.run([sys.executable, "-m", "slidescan.cli", "status", "--workdir", str(workdir)],
                            capture_output=True, text=True)
    assert status.returncode == 0 and "24 done, 0 failed" in status.stdout
    # new classifier settings: every nn fold is stale (it will be retrained), the trees are not
    changed = {**TINY, "classifier": {**TINY["classifier"], "nn": {**TINY["classifier"]["nn"], "epochs": 3}}}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(changed))
    status = subprocess.run([sys.executable, "-m", "slidescan.cli", "status", "--workdir", str(workdir)],
                            capture_output=True, text=True)
    assert status.returncode == 0 and "24 training folds: 8 done, 0 failed, 0 interrupted, 0 missing, 16 stale" \
        in status.stdout, status.stdout


# --- the report in a real browser (headless Chromium) ---


def chromium() -> str:
    """Chromium's path; as root on Debian it is installed on first use (Debian package ``chromium``)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True)
        return shutil.which("chromium")
    if os.environ.get("CI"):
        pytest.fail("headless Chromium is required in CI (Debian package 'chromium') and could not be installed")
    pytest.skip("no chromium and no root to install it: apt-get install chromium to run the browser test")


def test_report_renders_summary_and_scan_figures_in_a_browser(tiny_run, tmp_path):
    result = subprocess.run([sys.executable, "-m", "slidescan.cli", "report", "--workdir", str(tiny_run)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    report = tiny_run / "results" / "tiny" / "report.html"
    browser = chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    # rendered by the report's JavaScript: the summary and the result categories
    assert "Most significant windows at injection 400" in dom
    assert "Jobs: 24 of 24 training folds done" in dom
    # the methods side by side, the global Z once per scan, and the most sensitive calibrated method named
    assert "Methods side by side" in dom and "global Z of the scan (median)" in dom
    assert "Most sensitive calibrated method:" in dom
    for category in ("Scan", "Sensitivity", "Calibration", "Methods", "Templates", "Diagnostics", "Jobs"):
        assert f">{category}<" in dom, category
    for figure in ("pvalue_scan_cathode-nn_inj400.png", "pvalue_scan_cwola-nn_inj0.png", "window_map.png",
                   "roc_sic.png", "max_sic_vs_sb.png", "sensitivity.png", "methods_z.png"):
        assert figure in dom, figure
    shot = tmp_path / "summary.png"
    subprocess.run([browser, *flags, "--window-size=1400,1800", f"--screenshot={shot}", report.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one

    # the scan page: a copy of the report that clicks Results > Scan > cwola-nn and opens its first figure,
    # as a user would (the report is a single-page app without URLs for its pages)
    clicks = """<script>
    const nav = (t) => [...document.querySelectorAll('li > a')].find(e => e.textContent.trim() === t)?.click();
    window.addEventListener('load', () => {
      setTimeout(() => nav('Scan'), 1000);
      setTimeout(() => nav('cwola-nn'), 2000);
      setTimeout(() => document.querySelector('tbody a[iconname=eye]')?.click(), 3000);
    });
    </script></body>"""
    html = report.read_text()
    cut = html.rfind("</body>")
    scan_page = tmp_path / "scan_page.html"
    scan_page.write_text(html[:cut] + clicks + html[cut + len("</body>"):])
    scan_dom = subprocess.run([browser, *flags, "--dump-dom", scan_page.as_uri()], capture_output=True, text=True,
                              timeout=120).stdout
    # the figure is shown: its image is in the page, with the Scan caption (how to read a p-value scan)
    assert re.search(r'<img src="data:image/png[^"]*filename=pvalue_scan_cwola-nn_inj\d+\.png;base64,', scan_dom)
    assert "sigma" in scan_dom.lower() or "σ" in scan_dom
    scan_shot = tmp_path / "scan.png"
    subprocess.run([browser, *flags, "--window-size=1400,1000", f"--screenshot={scan_shot}", scan_page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert scan_shot.stat().st_size > 50_000

    # the Methods page: Results > Methods, its table of every method side by side opened
    methods_clicks = clicks.replace("nav('Scan')", "nav('Methods')").replace(
        "setTimeout(() => nav('cwola-nn'), 2000);", "")
    methods_page = tmp_path / "methods_page.html"
    methods_page.write_text(html[:cut] + methods_clicks + html[cut + len("</body>"):])
    methods_dom = subprocess.run([browser, *flags, "--dump-dom", methods_page.as_uri()], capture_output=True,
                                 text=True, timeout=120).stdout
    for column in ("most_significant_window", "seeds_in_true_window", "global_z", "calibration"):
        assert column in methods_dom, column
    methods_shot = tmp_path / "methods.png"
    subprocess.run([browser, *flags, "--window-size=1400,1800", f"--screenshot={methods_shot}", methods_page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert methods_shot.stat().st_size > 50_000
    if os.environ.get("SLIDESCAN_SCREENSHOTS"):  # refresh the screenshots in docs/
        shutil.copy(shot, os.environ["SLIDESCAN_SCREENSHOTS"] + "/report_summary.png")
        shutil.copy(scan_shot, os.environ["SLIDESCAN_SCREENSHOTS"] + "/report_scan.png")
        shutil.copy(methods_shot, os.environ["SLIDESCAN_SCREENSHOTS"] + "/report_methods.png")


@pytest.mark.parametrize("configfile", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_every_shipped_config_builds_its_dag(tmp_path, configfile):
    """Each scan config in config/ passes the schema and builds its DAG (one seed, to keep it quick; a DAG
    benchmark's shape of thousands of training jobs with its first injection only: benchmarks/dag.py times the
    whole, and its 31,420 jobs took 106 s of CI here)."""
    for item in ("Snakefile", "workflow", "config"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    config = yaml.safe_load((REPO / "config" / configfile).read_text())
    merged = {**yaml.safe_load((REPO / "config" / "config.yaml").read_text()), **config}
    n_windows = len(region_grid(merged["windows"]))
    injections = merged["injections"]
    if n_windows * len(merged["methods"]) * len(injections) > 2000:
        injections = injections[:1]
    (tmp_path / "one_seed.yaml").write_text(f"seeds: [1]\ninjections: {injections}\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--quiet", "rules",
                             "--configfile", f"config/{configfile}", "one_seed.yaml"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout + result.stderr)
    # injection 0 once, every other injection once per signal model (issue 31)
    groups = sum(1 if injection == 0 else len(merged.get("signals") or [None]) for injection in injections)
    assert counts["train"] == n_windows * len(merged["methods"]) * groups


def test_a_model_added_to_signals_adds_exactly_its_injected_jobs(tmp_path):
    config = {**TINY, "methods": ["cwola-nn"], "bumphunt": {"efficiencies": [1.0, 0.1]}, "signals": {"a": {}}}
    workdir = make_workdir(tmp_path, config)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-4000:]
    results = workdir / "results" / "tiny"
    assert (results / "data" / "signal_a.h5").exists() and (results / "data" / "a_inj400_seed1.h5").exists()
    limits = pd.read_csv(results / "limits.csv")
    assert set(limits["signal"]) == {"a"} and limits["limit_obs"].notna().all()
    assert (results / "plots" / "limits_cwola-nn_a.png").exists()
    config["signals"]["b"] = {"m_wprime": 3.3}
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake(workdir, "-n")
    assert dry.returncode == 0, dry.stderr
    counts = job_counts(dry.stdout + dry.stderr)
    # model b's sample, its injection, its splits (2 windows), training jobs and bump hunt; nothing of injection 0
    # or of model a is redone, only the tables and figures that gather every model
    assert {k: v for k, v in counts.items() if k in ("prepare_data", "prepare_signal", "inject", "split", "train",
                                                     "bumphunt")} == \
        {"prepare_signal": 1, "inject": 1, "split": 2, "train": 2, "bumphunt": 1}
    experiments = [re.search(r"signal=(\w*), injection=(\d+)", block).groups()
                   for rule, block in re.findall(r"^rule (\w+):\n((?:    .*\n)+)", dry.stdout + dry.stderr, re.M)
                   if rule in ("inject", "split", "train", "bumphunt")]
    assert experiments and set(experiments) == {("b_", "400")}
    status = subprocess.run([sys.executable, "-m", "slidescan.cli", "status", "--workdir", str(workdir)],
                            capture_output=True, text=True)
    assert "4 training folds: 0 done" not in status.stdout
    assert "12 training folds: 8 done, 0 failed, 0 interrupted, 4 missing" in status.stdout, status.stdout
    assert "signal b injection 400 seed 1" in status.stdout
    # model b's sample is a data job of its own, not yet made (a failed one would say why)
    assert "data jobs (prepare_data, prepare_signal, inject, split)" in status.stdout
    assert re.search(r"missing\s.*job prepare_signal signal b\b", status.stdout), status.stdout
