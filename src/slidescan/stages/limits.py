"""The limits stage: per method, window and cut, the 95 % CL upper limit on the injected signal (stats.limits).

The observed limits come from the background-only pseudo-experiments (injection 0: on data, the data), one row
per seed; the signal's selection efficiency from the pseudo-experiments with signal injected, at every
strength, so that the efficiency used is the one at the excluded strength.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..io import write_csv
from ..settings import ScanSettings


def limits_table(settings: ScanSettings, scan: pd.DataFrame, workers: int = 1) -> pd.DataFrame:
    """One row per signal model, method, window, efficiency and background-only seed (the p-value scan's rows).

    Every model is tested against the same background-only pseudo-experiments; its efficiency comes from its own
    injected ones. A method trained on the true signal (the supervised reference) saw the first model's signal at
    injection 0; its limits on the other models are marked in ``note``.

    ``limit_obs`` and ``limit_exp_*`` are injected signal events (every event of the signal, before any
    selection); ``s95_obs`` and ``s95_exp_*`` the limits on the selected signal count in the SR they come
    from; ``signal_efficiency_scatter`` the relative scatter of the efficiency between pseudo-experiments that the
    observed limit holds as a nuisance (NaN: one seed, not measured); ``declared`` marks the cut declared in advance
    (``limits.efficiency``). ``note`` says why a row has
    no limit, or that its efficiency was held at the nearest injected strength (``extrapolated``).

    ``workers`` > 1 computes the cuts' limits in that many processes: each asymptotic limit is a root search of
    about 45 pyhf fits (a second or more), the default scan has about 80 of them, and the job runs alone at the end
    of the DAG, where a serial loop leaves the other core idle. The rows are the same, in the same order.
    """
    from ..stats.limits import Efficiency

    if "signal" not in scan:  # a scan table from before signal models: one model
        scan = scan.assign(signal="")
    if "n_signal_selected" not in scan or (scan["n_signal_selected"] < 0).all():
        raise ValueError("limits: the scan has no truth-labelled signal (n_signal_selected), so the signal's "
                         "selection efficiency cannot be measured; limits need injections above 0 of labelled "
                         "signal events")
    if not (scan["injection"] > 0).any() or not (scan["injection"] == 0).any():
        raise ValueError(f"limits: need injection 0 (the observed data) and injections above 0 (the signal's "
                         f"efficiency); the scan has injections {sorted(scan['injection'].unique().tolist())}")
    # with weights the selected signal is a sum of weights and the injection a count of events: the efficiency is
    # right only if the signal's weights average 1, which slidescan cannot know (rows say so)
    weighted = ("weighted events: the efficiency is the selected signal's sum of weights over injected events"
                if settings.data.table is not None and settings.data.table.weight else "")
    tasks = []  # one per model, method, window and cut: _limit_rows's arguments
    scan = scan.reset_index(drop=True)
    null = scan[scan["injection"] == 0]
    cuts = ["method", "window", "efficiency"]  # a window's bounds follow from it (and are empty for thresholds)
    # the sideband fit's SR background, NaN where it failed, and the observed counts: what the fit absorbs of a signal
    # (its excess over the true background, observed less the true signal selected) is taken off the efficiency
    # (Efficiency.measure)
    fitted = scan["n_bkg"].where(scan["fit_ok"].astype(bool))
    nulls = {key: (fitted[g.index], g["n_obs"]) for key, g in null.groupby(cuts, sort=True)}
    for model in settings.signals:
        injected_rows = scan[(scan["injection"] > 0) & (scan["signal"] == model.name)]
        if injected_rows.empty:
            continue
        trained_on = [m for m, run in settings.methods.items() if getattr(run.method, "signal_truth", False)]
        other = (f"its injection-0 scores were trained on the true signal of model {settings.signals[0].name}"
                 if model.name != settings.signals[0].name else "")
        efficiencies = {}
        for key, g in injected_rows.groupby(cuts, sort=True):
            null_fitted, null_observed = nulls.get(key, (None, None))
            efficiencies[key] = Efficiency.measure(g["injection"], g["n_signal_selected"], fitted[g.index],
                                                   null_fitted, g["n_obs"], null_observed)
        for key, group in null.groupby(cuts, sort=True):
            if key not in efficiencies:
                continue
            notes = [weighted, other if key[0] in trained_on and other else ""]
            tasks.append((settings.limits, settings.limit_efficiency, model.name, key, group, efficiencies[key], notes))
    if workers > 1 and len(tasks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork: a spawned worker would re-run the job's main module (a Snakemake script, no main guard); the workers
        # run pyhf and numpy only, never torch, whose threads a fork leaves unusable
        with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_limit_rows, *zip(*tasks)))
    else:
        results = [_limit_rows(*task) for task in tasks]
    return pd.DataFrame([row for rows in results for row in rows])


def _limit_rows(lim, declared_efficiency: float, signal: str, key: tuple, group: pd.DataFrame, efficiency,
                notes: list[str]) -> list[dict]:
    """The rows of one model, method, window and cut: one per background-only seed (``lim``: the limits
    settings; what a worker process is sent, so no method objects)."""
    from ..stats.limits import BANDS, injected_limit

    rows = []
    for _, row in group.sort_values("seed").iterrows():
        method, window, eff = key
        out = {"signal": signal, "method": method, "window": window, "sr_lo": row["sr_lo"], "sr_hi": row["sr_hi"],
               "efficiency": eff}
        out.update(seed=int(row["seed"]), n_obs=row["n_obs"], n_bkg=row["n_bkg"], n_bkg_err=row["n_bkg_err"],
                   declared=bool(np.isclose(key[-1], declared_efficiency)))
        if not (bool(row["fit_ok"]) and np.isfinite(row["n_bkg"]) and row["n_bkg"] > 0):
            out.update(note=f"no limit: the sideband fit failed ({row.get('fit_message', '')})")
            rows.append(out)
            continue
        limit = injected_limit(row["n_obs"], row["n_bkg"], row["n_bkg_err"], efficiency, lim.calculator, lim.cl,
                               float(row.get("count_scale", 1.0)))
        n_obs = limit.observed
        out.update(calculator=limit.selected.calculator, s95_obs=limit.selected.observed,
                   **{f"s95_exp_{b}": v for b, v in zip(BANDS, limit.selected.expected)},
                   limit_obs=n_obs, **{f"limit_exp_{b}": v for b, v in zip(BANDS, limit.expected)},
                   signal_efficiency=float(efficiency.at(n_obs)) if np.isfinite(n_obs) else float("nan"),
                   signal_efficiency_err=float(np.interp(n_obs, efficiency.injections, efficiency.error))
                   if np.isfinite(n_obs) else float("nan"),
                   signal_efficiency_scatter=limit.scatter, extrapolated=efficiency.extrapolated(n_obs),
                   note="; ".join(filter(None, [_note(n_obs, limit.scatter, efficiency), *notes])))
        if lim.luminosity:
            out.update(xsec_obs_fb=n_obs / lim.luminosity,
                       **{f"xsec_exp_{b}_fb": out[f"limit_exp_{b}"] / lim.luminosity for b in BANDS})
        rows.append(out)
    return rows


def _note(n: float, scatter: float, efficiency) -> str:
    if not np.isfinite(n):
        return "no limit: the cut keeps too little of the signal at every injected strength"
    notes = []
    if efficiency.extrapolated(n):
        notes.append(f"efficiency held at the nearest injected strength ({efficiency.injections.min():g}-"
                     f"{efficiency.injections.max():g} events injected)")
    # with one pseudo-experiment per strength the efficiency's scatter between them is unknown, and a limit without it
    # is too strong by about as much (whole-procedure coverage measured it; docs/benchmarks.md, "Upper limits")
    if not np.isfinite(scatter):
        notes.append("the efficiency's scatter between pseudo-experiments is not in the limit (one seed per injected "
                     "strength cannot measure it): the limit is too strong by about that scatter")
    return "; ".join(notes)


def run_limits(settings: ScanSettings, scan_csv: str | os.PathLike, out: str | os.PathLike,
               plots: dict | None = None, workers: int = 1) -> pd.DataFrame:
    """``limits.csv`` from the p-value scan; ``plots`` ((method, signal model) -> png) get the limit-vs-window
    figures."""
    from .scan import read_scan

    table = limits_table(settings, read_scan(scan_csv), workers)
    write_csv(out, table)
    if plots:
        from ..plots import limit_plot

        for (method, signal), path in plots.items():
            limit_plot(table, method, settings.limit_efficiency, path, settings.limits.cl,
                       settings.signal(signal).mass, signal)
    return table
