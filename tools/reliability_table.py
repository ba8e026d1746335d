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
    mutate(table)
    path = workdir({**SMALL, "data": {"source": "lhco_h5", "lhco_h5": {"path": "events.h5"}, **(extra or {})}})
    table.to_hdf(path / "events.h5", key="df", format="table") if len(table) else (path / "events.h5").write_bytes(b"")
    result = slidescan(path, "run", "--no-report")
    status = slidescan(path, "status")
    row(case, "slidescan run; slidescan status", status, first_line(status, r"failed  |dropped") or
        first_line(result), {}, {})


def main() -> None:
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
    lhco_case("zero-byte events file", lambda t: t.drop(t.index, inplace=True))

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
