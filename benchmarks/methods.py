"""The method family through the workflow, on the same pseudo-experiments: sensitivity and calibration.

    python benchmarks/methods.py --configfile config/methods_family.yaml --json benchmarks/results/methods_family.jsonl

Runs the scan with Snakemake (``profiles/local``) in the checkout, then summarises per method and
injection, over seeds (median and range):

- from ``performance.csv`` (out-of-fold scores of the SR events of the window nearest the signal, truth
  known): max SIC with at least 20 background events passing, SIC at signal efficiency 0.3, AUC;
- from ``pvalue_scan.csv``: the local Z in that window at the best efficiency, the largest local Z over every window
  and efficiency (a non-resonant grid's "best threshold"), the naive S/sqrt(B) of that window's SR without a cut,
  and the AUC of SR data against the method's SR template (``sr_auc_vs_reference``; None for methods without one);
- from ``calibration.csv`` (injection 0): the largest local Z over windows, efficiencies and seeds, and
  the KS p-value of the local p0 against uniform;
- from ``pvalue_scan.csv`` (injection 0): how much the tightest cut sculpts the background's mjj, the SR's kept
  fraction over the fraction its sidebands' interpolate to (median and range over windows and seeds; 1: none) and
  the mjj Jensen-Shannon
  divergence of the kept events (``stats.bumphunt.sculpting``).

A background-only scan (``injections: [0]``, a calibration such as config/methods_unsupervised_calibration.yaml) has
no signal to measure: it is summarised per method from the p-value scan and the calibration alone (the largest local
Z of each seed, the template's closure, the calibration and the sculpting).

Every registered method runs through the same stages (models, folds, bump hunt), so a plug-in method
named in the config is benchmarked the same way. ``--summary-only`` summarises a finished scan.

``--preset none|mild|strong`` sets the mismodelling of the scan's synthetic simulation sample
(``data.samples.simulation``, docs/synthetic.md) on top of the config, and labels the rows with it: run the presets
one after another on the same scan and only what reads the simulation reruns (SALAD, FETA, the simulation's flow).
``--tables-only`` runs only what the summary reads (no limits, figures or report: the limits alone take minutes).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def null_rows(method: str, scan: pd.DataFrame, calibration: pd.DataFrame) -> dict:
    """Injection 0 of one method: how much the tightest cut sculpts, and the calibration of its p0."""
    from slidescan.report.methods import sculpting_summary

    row = {}
    null = scan[(scan["method"] == method) & (scan["injection"] == 0)]
    sculpted = sculpting_summary(null) if len(null) else {}
    if sculpted:
        row["sculpting"] = [sculpted["sr_efficiency_ratio"], sculpted["sr_efficiency_ratio_min"],
                            sculpted["sr_efficiency_ratio_max"]]
        row["sculpting_efficiency"] = sculpted["sculpting_efficiency"]
        row["sculpting_jsd"] = sculpted["mjj_jsd"]
    if method in calibration.index:
        row["null_max_z"] = float(calibration.loc[method, "max_z"])
        row["null_ks_p"] = float(calibration.loc[method, "ks_pvalue"])
        if "ks_pvalue_excess" in calibration:  # one-sided: too many small p0 (report.methods' verdict)
            row["null_ks_p_excess"] = float(calibration.loc[method, "ks_pvalue_excess"])
        row["null_n_p0"] = int(calibration.loc[method, "n"])
    return row


def _spread(values) -> list | None:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]  # a seed without a value (no fit, no template) is left out; "seeds" counts them all
    return [float(np.median(v)), float(v.min()), float(v.max())] if len(v) else None


def summarise_background_only(scan: pd.DataFrame, calibration: pd.DataFrame) -> pd.DataFrame:
    """A scan without injected signal (a calibration): per method, its template's closure, its largest local Z
    and the calibration of its p0 over the seeds."""
    out = []
    for method, grp in scan.groupby("method"):
        per_seed = grp.groupby("seed")
        out.append({"method": method, "injection": 0, "seeds": int(grp["seed"].nunique()),
                    "window": ", ".join(sorted(set(grp["window"]))), "s_over_b": 0.0,
                    "sr_auc_vs_reference": _spread(per_seed["sr_auc_vs_reference"].first()),
                    "z_best_window": _spread(per_seed["z"].max()), **null_rows(method, scan, calibration)})
    return pd.DataFrame(out)


def summarise(results: Path) -> pd.DataFrame:
    scan = pd.read_csv(results / "pvalue_scan.csv")
    calibration = pd.read_csv(results / "calibration.csv").set_index("method")
    if not (scan["injection"] > 0).any():
        return summarise_background_only(scan, calibration)
    performance = pd.read_csv(results / "performance.csv")
    window = performance["window"].iloc[0]
    in_window = scan[scan["window"] == window].groupby(["method", "injection", "seed"])
    z = in_window["z"].max().rename("z_true_window")
    # SR data against the method's own SR template, out of fold: 0.5 at injection 0 if the template is right
    reference_auc = in_window["sr_auc_vs_reference"].first()
    # the largest local Z over every window and cut (a non-resonant study's "best threshold"; no look-elsewhere)
    z_any = scan.groupby(["method", "injection", "seed"])["z"].max().rename("z_best_window")
    # the naive S/sqrt(B) of the true window's SR without a cut: what a search without the method would see
    uncut = scan[(scan["window"] == window) & (scan["efficiency"] >= 1.0)].groupby(["method", "injection", "seed"])
    signal, observed = uncut["n_signal_sr"].first(), uncut["n_obs"].first()
    naive = (signal / np.sqrt(np.maximum(observed - signal, 1.0))).rename("naive_s_over_sqrt_b")
    rows = performance.merge(pd.concat([z, reference_auc, z_any, naive], axis=1).reset_index(),
                             on=["method", "injection", "seed"], how="left")
    out = []
    for (method, injection), grp in rows.groupby(["method", "injection"]):
        row = {"method": method, "injection": int(injection), "seeds": len(grp), "window": window,
               "s_over_b": float(grp["s_over_b"].median())}
        for key in ("max_sic_20", "sic_at_0.3", "auc", "z_true_window", "sr_auc_vs_reference", "z_best_window",
                    "naive_s_over_sqrt_b"):
            row[key] = _spread(grp[key])
        row.update(null_rows(method, scan, calibration))
        out.append(row)
    return pd.DataFrame(out)


def table(summary: pd.DataFrame) -> str:
    def cell(v):
        return f"{v[0]:.3g} ({v[1]:.3g}-{v[2]:.3g})" if isinstance(v, list) else "-"

    lines = ["| method | injection (S/B in SR) | naive S/sqrt(B) | max SIC (>=20 bkg) | SIC at 0.3 | AUC | "
             "Z, true window | Z, best window | AUC SR data vs template | injection 0: largest Z, KS p | "
             "injection 0: SR / sidebands kept, mjj JSD |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary.sort_values(["injection", "method"], ascending=[False, True]).to_dict("records"):
        null = f"{r['null_max_z']:.2f}, {r['null_ks_p']:.2f}" if not pd.isna(r.get("null_max_z", np.nan)) else "-"
        sculpted = r.get("sculpting")
        sculpted = (f"{cell(sculpted)} at {100 * r['sculpting_efficiency']:g} %, {r['sculpting_jsd']:.4f}"
                    if isinstance(sculpted, list) else "-")
        lines.append(f"| {r['method']} | {r['injection']} ({100 * r['s_over_b']:.2f} %) | "
                     f"{cell(r.get('naive_s_over_sqrt_b'))} | {cell(r.get('max_sic_20'))} | "
                     f"{cell(r.get('sic_at_0.3'))} | {cell(r.get('auc'))} | {cell(r.get('z_true_window'))} | "
                     f"{cell(r['z_best_window'])} | "
                     f"{cell(r['sr_auc_vs_reference'])} | {null} | {sculpted} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config/methods_family.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--summary-only", action="store_true", help="summarise the finished scan, run nothing")
    parser.add_argument("--json", help="append one line per method and injection to this file")
    parser.add_argument("--tables-only", action="store_true",
                        help="run only what the summary reads (p-value scan, performance, calibration): no limits, "
                             "no figures, no report")
    parser.add_argument("--preset", choices=["none", "mild", "strong"],
                        help="the mismodelling of data.samples.simulation (overrides the config's)")
    args = parser.parse_args()

    sys.path.insert(0, str(REPO / "src"))
    from slidescan.config import load_settings

    settings = load_settings(REPO, args.configfile)
    results = settings.layout(REPO).root
    seconds = None
    configfiles = [args.configfile]
    if args.preset:
        if "simulation" not in {sample.name for sample in settings.data.samples}:
            sys.exit(f"--preset: {args.configfile} names no data.samples.simulation")
        overlay = results / "benchmark_preset.yaml"
        overlay.parent.mkdir(parents=True, exist_ok=True)
        overlay.write_text(f"data:\n  samples:\n    simulation:\n      mismodelling: {args.preset}\n")
        configfiles.append(str(overlay))
    if not args.summary_only:
        started = time.time()
        # a background-only scan (a calibration) has no performance table: no signal to measure SIC on
        tables = ("pvalue_scan.csv", "calibration.csv", *(("performance.csv",) if max(settings.injections) > 0 else ()))
        targets = [str((results / name).relative_to(REPO)) for name in tables] if args.tables_only else []
        run = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--profile", "profiles/local", "--cores",
                              str(args.cores), "--configfile", *configfiles], cwd=REPO)
        seconds = round(time.time() - started)
        if run.returncode != 0:
            sys.exit(f"the scan failed (rc {run.returncode}); `slidescan status --configfile {args.configfile}`")
    summary = summarise(results)
    print(table(summary))
    if args.json:
        import yaml

        # the region settings that change what a calibration means, recorded with its figures
        windows = (yaml.safe_load((REPO / args.configfile).read_text()) or {}).get("windows") or {}
        regions = {key: windows[key] for key in ("validation", "condition") if key in windows}
        with open(args.json, "a") as handle:
            for row in summary.to_dict("records"):
                handle.write(json.dumps({"date": time.strftime("%Y-%m-%d"), "host": platform.node(),
                                         "configfile": args.configfile, "preset": args.preset, "wall_seconds": seconds,
                                         **row, **regions}) + "\n")


if __name__ == "__main__":
    main()
