"""Coverage of the upper limits (issue 31): how often a limit excludes a signal that is really there.

A 95 % CL limit must exclude a true signal in at most 5 % of the experiments that contain it (CLs is
conservative, so fewer). Two checks:

    python benchmarks/limits_coverage.py toys [--toys 400]
        the statistics alone, per (b, b_err) of the bump hunt's range: pseudo-experiments with a signal s equal
        to the expected median limit, n ~ Pois(s + b), the sideband fit's prediction b_hat ~ N(b, b_err); the limit from (n, b_hat, b_err) with slidescan.stats.limits.upper_limit; the fraction of
        limits below s, with its binomial error.

    python benchmarks/limits_coverage.py pyhf [--toys 4000]
        the closed-form limit at small counts beside pyhf's own toy-based limit (its ToyCalculator, q~mu).

    python benchmarks/limits_coverage.py scan results/<scan> [--recompute]
        the whole procedure, from a finished scan with `signals:` (or one model) and injections above 0: each
        injected pseudo-experiment is treated as the observed data, in the window nearest its model's mass at the
        declared cut, its limit on injected events set with the model's measured efficiency curve and its scatter
        between pseudo-experiments (stats.limits.injected_limit, as the limits stage does); the fraction
        of limits below the injected strength. Also prints, per model, the window of the lowest median expected
        limit (it should be the window of the model's mass) and the expected and observed limits per window.

Prints one JSON line per check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def binomial(k: int, n: int) -> dict:
    p = k / n if n else float("nan")
    return {"excluded": k, "of": n, "fraction": p, "error": float(np.sqrt(p * (1 - p) / n)) if n else float("nan")}


def toys(n_toys: int, seed: int) -> list[dict]:
    from slidescan.stats.limits import upper_limit

    generator = np.random.default_rng(seed)
    out = []
    for b, b_err in ((2.0, 0.5), (8.0, 1.5), (40.0, 4.0), (400.0, 15.0), (3000.0, 60.0)):
        s = upper_limit(b, b, b_err).expected[2]  # the expected median limit
        excluded = 0
        for _ in range(n_toys):
            b_hat = max(b + b_err * generator.standard_normal(), 1e-3)
            n = generator.poisson(s + b)
            excluded += int(upper_limit(float(n), b_hat, b_err).observed < s)
        out.append({"check": "toys", "b": b, "b_err": b_err, "signal": round(s, 2), **binomial(excluded, n_toys)})
    return out


def pyhf_toys(n_toys: int, seed: int) -> list[dict]:
    """The closed-form limit beside pyhf's own toy-based one (CLs of q~mu from pyhf's pseudo-experiments, solved on a
    grid of signals) where counts are small."""
    from slidescan.stats.limits import counting_limit, pyhf_toy_cls

    np.random.seed(seed)  # pyhf draws its toys from numpy's global generator
    out = []
    for n_obs, b, b_err in ((1, 2.0, 0.5), (3, 2.0, 0.5), (6, 4.0, 1.0)):
        closed = counting_limit(n_obs, b, b_err)
        grid = np.linspace(0.7 * closed, 1.1 * closed, 5)
        cls = np.array([pyhf_toy_cls(s, n_obs, b, b_err, n_toys) for s in grid])
        toy_limit = float(np.interp(0.05, cls[::-1], grid[::-1]))
        out.append({"check": "pyhf_toys", "n_obs": n_obs, "b": b, "b_err": b_err, "closed_form": round(closed, 3),
                    "pyhf_toys": round(toy_limit, 3), "ratio": round(closed / toy_limit, 3), "toys": n_toys})
    return out


def scan(results: Path, recompute: bool = False) -> list[dict]:
    import yaml

    from slidescan.settings import ScanSettings
    from slidescan.stages.limits import limits_table
    from slidescan.stages.scan import read_scan
    from slidescan.stats.limits import Efficiency, injected_limit

    # the settings the scan was made with (slidescan run records them beside its results)
    settings = ScanSettings.from_config(yaml.safe_load((results / "scan_settings.yaml").read_text()))
    table = read_scan(results / "pvalue_scan.csv")
    # the scan's limits.csv where this checkout's limits stage wrote it (--recompute: made anew, for an older scan)
    limits = pd.read_csv(results / "limits.csv") if (results / "limits.csv").exists() and not recompute else \
        limits_table(settings, table)
    eff = settings.limit_efficiency
    out = []
    for model in settings.signals:
        window = settings.truth_window_of(model.name).name
        for method in settings.methods:
            cut = table[(table["method"] == method) & np.isclose(table["efficiency"], eff)]
            injected = cut[(cut["signal"] == model.name) & (cut["injection"] > 0)]
            lim = limits[(limits["signal"] == model.name) & (limits["method"] == method) & limits["declared"]]
            per_window = lim.groupby("window")[["limit_exp_median", "limit_obs"]].median()
            excluded, tested, scatters = 0, 0, []
            curve = injected[injected["window"] == window]
            null = cut[(cut["injection"] == 0) & (cut["window"] == window)]
            # the stage's efficiency: the selected signal net of what the sideband fit absorbs
            efficiency = Efficiency.measure(curve["injection"], curve["n_signal_selected"],
                                            curve["n_bkg"].where(curve["fit_ok"].astype(bool)),
                                            null["n_bkg"].where(null["fit_ok"].astype(bool)), curve["n_obs"],
                                            null["n_obs"])
            for _, row in curve.iterrows():
                limit = injected_limit(row["n_obs"], row["n_bkg"], row["n_bkg_err"], efficiency,
                                       settings.limits.calculator, settings.limits.cl,
                                       float(row.get("count_scale", 1.0)))
                tested += 1
                excluded += bool(limit.observed < row["injection"])
                scatters.append(limit.scatter)
            out.append({"check": "scan", "signal": model.name, "mass": model.mass, "method": method,
                        "window_of_mass": window,
                        "lowest_expected_window": per_window["limit_exp_median"].idxmin() if len(per_window) else None,
                        "expected_median": per_window["limit_exp_median"].round(0).to_dict(),
                        "observed_median": per_window["limit_obs"].round(0).to_dict(),
                        "efficiency_scatter_median": round(float(np.nanmedian(scatters)), 3) if scatters else None,
                        **binomial(excluded, tested)})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("toys")
    t.add_argument("--toys", type=int, default=400)
    t.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("pyhf")
    p.add_argument("--toys", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("scan")
    s.add_argument("results", type=Path, help="results/<scan> of a finished scan")
    s.add_argument("--recompute", action="store_true", help="recompute the limits table (a scan's limits.csv from an "
                   "older slidescan)")
    ns = parser.parse_args(argv)
    rows = {"toys": lambda: toys(ns.toys, ns.seed), "pyhf": lambda: pyhf_toys(ns.toys, ns.seed),
            "scan": lambda: scan(ns.results, ns.recompute)}[ns.what]()
    for row in rows:
        print(json.dumps(row, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
