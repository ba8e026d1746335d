"""Every bad-input and hard-failure case of docs/reliability.md, run for real: command, exit code, the first line
the user sees, and whether finished outputs were kept (SHA-256 of every result file before and after).

    python tools/reliability_table.py > /tmp/table.md        (about 10 minutes on 2 cores)

Each case runs in a fresh copy of the workflow under a temporary directory, on the tiny scan of the tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_data import _lhco_table  # noqa: E402
from test_workflow import TINY  # noqa: E402

SMALL = {**TINY, "scan": "small", "methods": ["cwola-nn"], "injections": [400],
         "windows": {**TINY["windows"], "last_sr_lo": 3.1}}
ROWS = []


def workdir(config: dict) -> Path:
    path = Path(tempfile.mkdtemp(prefix="reliability-"))
    for item in ("Snakefile", "workflow", "profiles"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, path / item)
    (path / "config").mkdir()
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def run(path: Path, *command: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=path, capture_output=True, text=True, env={**os.environ, **(env or {})})


def slidescan(path: Path, *args: str, env=None):
    return run(path, sys.executable, "-m", "slidescan.cli", *args, env=env)


def snakemake(path: Path, *args: str, env=None):
    return run(path, sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "2", *args, env=env)


def sums(path: Path) -> dict:
    results = path / "results"
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(results.rglob("*"))
            if p.is_file() and "logs" not in p.parts} if results.exists() else {}


def first_line(result: subprocess.CompletedProcess, pattern: str | None = None) -> str:
    """The line a user reads first: the matching one (the error under Snakemake's progress), else the first."""
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    if pattern:
        lines = [line for line in lines if re.search(pattern, line)] or lines
    return (lines[0] if lines else "").strip()[:220]


def row(case: str, command: str, result, line: str, before: dict, after: dict) -> None:
    kept = [p for p in before if after.get(p) == before[p]]
    verdict = "nothing finished yet" if not before else (
        f"{len(kept)} of {len(before)} kept" + ("" if len(kept) == len(before) else " (the rest re-made by design)"))
    ROWS.append(f"| {case} | `{command}` | {result.returncode} | {line.replace('|', '/')} | {verdict} |")


def lhco_case(case: str, mutate, extra: dict | None = None) -> None:
    table = _lhco_table(n=500)
    changed = mutate(table)  # in place, or a new table
    table = table if changed is None else changed
    path = workdir({**SMALL, "data": {"source": "lhco_h5", "lhco_h5": {"path": "events.h5"}, **(extra or {})}})
    table.to_hdf(path / "events.h5", key="df", format="table") if len(table) else (path / "events.h5").write_bytes(b"")
    result = slidescan(path, "run", "--no-report")
    status = slidescan(path, "status")
    row(case, "slidescan run; slidescan status", status, first_line(status, r"failed  |dropped") or
        first_line(result), {}, {})


def run_case(case: str, config: dict, prepare=None, command: tuple = ("run", "--no-report")) -> subprocess.CompletedProcess:
    """A config (and files ``prepare`` writes into the checkout) run as a user would: the refusal's first line, or
    the failed job's line in `slidescan status` when the run got as far as a job."""
    path = workdir(config)
    if prepare:
        prepare(path)
    result = slidescan(path, *command)
    shown = result
    if result.returncode != 0 and "slidescan:" not in result.stderr:
        shown = slidescan(path, "status")
        row(case, f"slidescan {' '.join(command)}; slidescan status", shown, first_line(shown, "failed  "), {}, {})
    else:
        row(case, f"slidescan {' '.join(command)}", result, first_line(result, "^slidescan") or first_line(result),
            {}, {})
    return result


def parquet(frame: pd.DataFrame):
    return lambda path: frame.to_parquet(path / "ntuple.parquet")


def table_frame(n=600, mjj_scale=1.0, mass_scale=1.0) -> pd.DataFrame:
    g = np.random.default_rng(4)
    return pd.DataFrame({"mjj": g.uniform(2.8, 4.2, n) * mjj_scale, "mj1": g.uniform(0.02, 0.4, n) * mass_scale,
                         "delta_mj": g.uniform(0, 0.3, n) * mass_scale, "tau21_j1": g.uniform(0, 1, n),
                         "tau21_j2": g.uniform(0, 1, n), "label": np.zeros(n)})


def silently_wrong_cases() -> None:
    """The cases of issue 29: each used to end with exit code 0 and wrong numbers, or a traceback."""
    def label(value):
        def mutate(t):
            t.loc[t.index[:40], "label"] = value
        return mutate

    for value in (2.0, 0.5, 257.0):
        lhco_case(f"labels of {value:g} in the LHCO table", label(value))
    lhco_case("text labels ('b', 's')", lambda t: t.assign(label=np.where(t["label"] > 0, "s", "b")))
    unlabelled = {**SMALL, "data": {"source": "lhco_h5", "lhco_h5": {"path": "events.h5"}}}
    no_label = lambda path: _lhco_table(n=500).drop(columns="label").to_hdf(path / "events.h5", key="df",  # noqa: E731
                                                                            format="table")
    run_case("an LHCO table without a label column, injection 400", unlabelled, no_label)
    run_case("an LHCO table without a label column, idealized-bdt", {**unlabelled, "injections": [0],
                                                                     "methods": ["cwola-nn", "idealized-bdt"]}, no_label)
    run_case("a table source declared unlabelled (label: null), injection 400",
             {**SMALL, "data": {"source": "table", "table": {"path": "ntuple.parquet"}}}, parquet(table_frame()))

    def doubled(t):
        return pd.concat([t, t.iloc[:150]], ignore_index=True)
    lhco_case("every event of 150 twice (default: reject)", doubled)
    path = workdir({**SMALL, "data": {"source": "lhco_h5", "lhco_h5": {"path": "events.h5"}, "duplicates": "drop"}})
    doubled(_lhco_table(n=500)).to_hdf(path / "events.h5", key="df", format="table")
    slidescan(path, "run", "--no-report")
    log = (path / "results/small/logs/prepare_data.log").read_text().splitlines()
    ROWS.append(f"| 150 events twice, `data.duplicates: drop` | `slidescan run` | (prepare_data log) | {log[0][:200]} "
                "| - |")
    table = {**SMALL, "data": {"source": "table", "table": {"path": "ntuple.parquet", "label": "label"}}}
    run_case("a table in TeV declared GeV (`mjj_unit: GeV`)",
             {**table, "data": {"source": "table", "table": {**table["data"]["table"], "mjj_unit": "GeV"}}},
             parquet(table_frame()))
    run_case("a table in GeV read as TeV (the default)", table, parquet(table_frame(mjj_scale=1000)))
    run_case("jet masses in GeV, mjj in TeV", table, parquet(table_frame(mass_scale=1000)))
    run_case("windows in GeV", {**SMALL, "windows": {**SMALL["windows"], "first_sr_lo": 3100, "last_sr_lo": 3100,
                                                    "sr_width": 400, "step": 200, "sb_width": 600}})
    for name in ("..", "."):
        run_case(f"scan: {name!r}", {**SMALL, "scan": name})
    run_case("injections: [0, 400, 400]", {**SMALL, "injections": [0, 400, 400]})
    run_case("seeds: [1, 1]", {**SMALL, "seeds": [1, 1]})
    run_case("first_sr_lo > last_sr_lo", {**SMALL, "windows": {**SMALL["windows"], "first_sr_lo": 3.5,
                                                               "last_sr_lo": 3.0}})

    # status: the printed commands, run as printed
    path = workdir(SMALL)
    slidescan(path, "run", "--no-report", env={"SLIDESCAN_FAIL_JOBS": "*/train/w00/cwola-nn/inj400_seed1/fold1.h5"})
    status = slidescan(path, "status")
    lines = status.stdout.splitlines()
    only = lines[lines.index("only these jobs, nothing downstream:") + 1].split()
    before = sums(path)
    rerun = run(path, sys.executable, "-m", *only)
    row("status's \"only these jobs\" command after a failed fold", " ".join(only), rerun,
        first_line(rerun, "steps .* done|Error|error") or first_line(rerun), before, sums(path))
    slidescan(path, "run", "--no-report")
    fold = path / "results/small/train/w00/cwola-nn/inj400_seed1/fold0.h5"
    fold.unlink()
    status = slidescan(path, "status")
    row("a finished fold's file deleted", "slidescan status", status, first_line(status, "missing  "), {}, {})
    lines = status.stdout.splitlines()
    command = lines[lines.index("rerun exactly these jobs and what depends on them (finished folds are kept, not "
                                "retrained):") + 1].split()
    before = sums(path)
    rerun = slidescan(path, *command[1:2], "--no-report", *command[2:])
    row("status's rerun command for the deleted fold", " ".join(command), rerun,
        f"fold0.h5 remade: {fold.exists()}", before, sums(path))

    # a second head with new settings, refused while the first runs
    slow = {**SMALL, "classifier": {"nn": {"members": 2, "epochs": 60, "batch_size": 64, "n_best": 1}}}
    path = workdir(slow)
    head = subprocess.Popen([sys.executable, "-m", "slidescan.cli", "run", "--no-report"], cwd=path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    log = path / "results/small/logs/train/w00/cwola-nn/inj400_seed1/fold0.log"
    while not (log.exists() and "epoch 1/60" in log.read_text()):
        time.sleep(0.2)
    records = [path / "results/small/scan_settings.yaml", path / "results/small/launch/local_head.json"]
    before = [p.read_text() for p in records]
    (path / "config/config.yaml").write_text(yaml.safe_dump({**slow, "bumphunt": {"efficiencies": [1.0, 0.5]}}))
    second = slidescan(path, "run", "--force")
    unchanged = [p.read_text() for p in records] == before
    ROWS.append(f"| `run --force` with new settings while another head runs the scan | `slidescan run --force` | "
                f"{second.returncode} | {first_line(second).replace('|', '/')} | the settings record and the running "
                f"head's record {'unchanged' if unchanged else 'CHANGED'} (the other head's results keep growing) |")
    os.killpg(head.pid, signal.SIGINT)
    head.wait()

    # a toy p0 at its floor, shown as a bound
    toys = {**SMALL, "injections": [1000], "bumphunt": {"efficiencies": [1.0, 0.01], "p0_calculator": "toys",
                                                        "p0_toys": 100}}
    path = workdir(toys)
    result = slidescan(path, "run")
    summary = (path / "results/small/summary.rst").read_text().splitlines()
    cells = [line.strip() for line in summary if line.strip().startswith(("* - ≥", "- <"))][:2]
    row("a toy p0 at its floor (100 toys, a strong signal)", "slidescan run (the report's summary)", result,
        "local Z " + " and p0 ".join(c.lstrip("*- ") for c in cells), {}, {})

    # a full disk: results/ on a 2 MiB filesystem
    if os.geteuid() == 0:
        path = workdir(SMALL)
        (path / "results").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path / "results")], check=True)
        try:
            slidescan(path, "run", "--no-report")
            status = slidescan(path, "status")
            row("results on a full disk (2 MiB)", "slidescan run; slidescan status", status,
                first_line(status, "failed  "), {}, {})
        finally:
            subprocess.run(["umount", str(path / "results")], check=True)

    # files and pipes
    path = workdir(SMALL)
    result = run(path, "bash", "-c", f"umask 002 && {sys.executable} -m slidescan.cli run --no-report && stat -c '%A "
                 "%n' results/small/pvalue_scan.csv")
    row("umask 002", "umask 002; slidescan run; stat", result, result.stdout.strip().splitlines()[-1], {}, {})
    result = run(path, "bash", "-c", f"{sys.executable} -m slidescan.cli status | head -n 0; "
                 "echo exit ${PIPESTATUS[0]},")
    piped = run(path, "bash", "-c", f"{sys.executable} -m slidescan.cli status 2>&1 >/dev/null | head -n 0 | wc -c")
    code = result.stdout.split(",")[0].split()[-1]
    ROWS.append(f"| `slidescan status / head` | `slidescan status / head -n 0` | {code} (SIGPIPE's) | nothing printed: "
                f"{piped.stdout.strip()} bytes on stderr | - |")
    perf = {**SMALL, "methods": ["idealized-bdt"], "classifier": {"bdt": {"members": 2, "max_iter": 30}}}
    path = workdir(perf)
    result = slidescan(path, "run", "--no-report")
    table = pd.read_csv(path / "results/small/performance.csv")
    row("SIC at a signal efficiency whose cut keeps too few background events (trees)", "slidescan run; "
        "performance.csv", result, f"sic_at_0.2 = {table['sic_at_0.2'].iloc[0]}, sic_at_0.3 = "
        f"{table['sic_at_0.3'].iloc[0]} (max_sic_20 = {table['max_sic_20'].iloc[0]:.3g})", {}, {})


def main() -> None:
    silently_wrong_cases()

    def nan(t):
        t.loc[[3, 7, 11], "tau2j1"] = np.nan

    def inf(t):
        t.loc[[5], "tau1j1"] = np.inf

    lhco_case("NaN in an input column (default: reject)", nan)
    lhco_case("inf in tau1 (tau21 would be 0)", inf)
    # drop policy: the run gets past the data (the tiny table has too few events for its windows: that is named)
    table = _lhco_table(n=500)
    nan(table)
    path = workdir({**SMALL, "data": {"source": "lhco_h5", "lhco_h5": {"path": "events.h5"}, "non_finite": "drop"}})
    table.to_hdf(path / "events.h5", key="df", format="table")
    slidescan(path, "run", "--no-report")
    log = (path / "results/small/logs/prepare_data.log").read_text().splitlines()
    ROWS.append(f"| NaN with `data.non_finite: drop` | `slidescan run` | (prepare_data log) | {log[0][:200]} | - |")
    lhco_case("zero-byte events file", lambda t: t.iloc[:0])

    path = workdir({**SMALL, "windows": {**SMALL["windows"], "last_sr_lo": 5.5, "step": 0.4}})
    slidescan(path, "run", "--no-report")
    status = slidescan(path, "status")
    row("windows past the end of the data", "slidescan run; slidescan status", status, first_line(status, "failed  "),
        {}, {})
    path = workdir({**SMALL, "injections": [0, 3000]})
    slidescan(path, "run", "--no-report")
    status = slidescan(path, "status")
    row("injection larger than the signal pool", "slidescan run; slidescan status", status,
        first_line(status, "failed  "), {}, {})

    # features and tables
    path = workdir({**SMALL, "features": "extended1"})
    slidescan(path, "run", "--no-report")
    status = slidescan(path, "status")
    row("a feature the input lacks (features: extended1 on the baseline synthetic events)",
        "slidescan run; slidescan status", status, first_line(status, "failed  "), {}, {})
    path = workdir({**SMALL, "data": {"source": "table", "table": {"path": "ntuple.parquet", "label": "label"}}})
    g = np.random.default_rng(1)
    pd.DataFrame({"mjj": g.uniform(2.8, 4.2, 500), "mj1": g.uniform(0, 0.5, 500), "delta_mj": g.uniform(0, 0.4, 500),
                  "tau21_j1": g.uniform(0, 1, 500), "label": np.zeros(500)}).to_parquet(path / "ntuple.parquet")
    slidescan(path, "run", "--no-report")
    status = slidescan(path, "status")
    row("a Parquet table without a feature's column (tau21_j2)", "slidescan run; slidescan status", status,
        first_line(status, "failed  "), {}, {})

    # a failed fold: status, the rerun, the partial report
    path = workdir({**SMALL, "injections": [0, 400]})
    fail = {"SLIDESCAN_FAIL_JOBS": "*/train/w00/cwola-nn/inj400_seed1/fold1.h5"}
    slidescan(path, "run", "--no-report", env=fail)
    status = slidescan(path, "status")
    row("a fold fails", "slidescan status", status, first_line(status, "failed  "), {}, {})
    before = sums(path)
    report = slidescan(path, "report")
    row("report after a failure", "slidescan report", report, first_line(report, "report written"), before, sums(path))
    before = sums(path)
    rerun = slidescan(path, "run", "--no-report")
    row("rerun after the failure", "slidescan run", rerun, first_line(rerun, "kept|training") or "", before, sums(path))
    fresh = workdir(SMALL)
    report = slidescan(fresh, "report")
    row("report before any run", "slidescan report", report, first_line(report), {}, sums(fresh))

    # SIGKILL of the head in the middle of training, then the documented rerun
    slow = {**SMALL, "classifier": {"nn": {"members": 2, "epochs": 40, "batch_size": 64, "n_best": 1}}}
    path = workdir(slow)
    fold_log = path / "results/small/logs/train/w00/cwola-nn/inj400_seed1/fold0.log"
    head = subprocess.Popen([sys.executable, "-m", "snakemake", "--profile", "profiles/local", "--cores", "1"], cwd=path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while not (fold_log.exists() and len(re.findall(r"^epoch \d+/40", fold_log.read_text(), re.M)) >= 3):
        time.sleep(0.2)
    os.killpg(head.pid, signal.SIGKILL)
    head.wait()
    status = slidescan(path, "status")
    row("head killed (SIGKILL) mid-training", "slidescan status", status, first_line(status, "STALE LOCK"), {}, {})
    before = sums(path)
    rerun = slidescan(path, "run", "--no-report")
    row("the rerun after the kill", "slidescan run", rerun, first_line(rerun, "stale"), before, sums(path))

    # new settings under the same scan name
    path = workdir(SMALL)
    slidescan(path, "run", "--no-report")
    before = sums(path)
    changed = {**SMALL, "classifier": {**SMALL["classifier"], "nn": {**SMALL["classifier"]["nn"], "epochs": 3}}}
    (path / "config/config.yaml").write_text(yaml.safe_dump(changed))
    refused = slidescan(path, "run", "--no-report")
    row("changed settings, same scan name", "slidescan run", refused, first_line(refused), before, sums(path))

    # config mistakes
    path = workdir(SMALL)
    (path / "typo.yaml").write_text("scan: small\nmethod: [cwola-nn]\n")
    (path / "broken.yaml").write_text("scan: small\nmethods: [cwola-nn\n")
    for case, name in (("a typo'd top-level key", "typo.yaml"), ("a YAML syntax error", "broken.yaml")):
        result = slidescan(path, "run", "--configfile", name)
        row(case, f"slidescan run --configfile {name}", result, first_line(result).replace(str(path) + "/", ""),
            {}, {})

    print("| case | command | exit code | first line the user sees | finished outputs |")
    print("|---|---|---|---|---|")
    print("\n".join(ROWS))


if __name__ == "__main__":
    main()
