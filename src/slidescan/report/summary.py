"""The summary a physicist reads first, on the report's landing page.

Written by ``slidescan report`` from whatever results exist, so it also describes a scan with failed
folds: most significant windows, agreement between methods, the calibration verdict, and the jobs
that did not finish. Snakemake renders it as the report's global description.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..config import load_settings
from ..io import atomic_path
from .status import count_states, fold_states, model_states

STATIC_DESCRIPTION = Path("workflow/report/workflow.rst")


def _table(rows: list[list[str]], header: list[str]) -> str:
    """An rst list-table."""
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def p0_text(p0: float, bound: bool) -> str:
    """A p0 as the tables show it: ``< p`` when it is the toys' floor (no toy was as extreme; the true p0 is smaller)."""
    return f"< {p0:.2g}" if bound else f"{p0:.2g}"


def z_text(z: float, bound: bool) -> str:
    """A local Z as the tables show it: ``≥ z`` when its p0 is a bound."""
    return f"≥ {z:.2f}" if bound else f"{z:.2f}"


def _bound(row) -> bool:
    return bool(getattr(row, "p0_bound", False)) is True


def methods_text(settings) -> str:
    """One line per method of the scan: what it is and the per-window models it needs."""
    lines = []
    for name, run in settings.methods.items():
        what = run.method.description + (f", classifier: {run.backend.description}" if hasattr(run, "backend") else "")
        models = ", ".join(run.models)
        lines.append(f"- ``{name}``: {what}" + (f"; per-window models: {models}" if models else ""))
    return "\n".join(lines)


def limits_text(settings, layout) -> list[str]:
    """Per method, the window with the lowest limit at the declared cut, observed and expected (``limits.csv``)."""
    path = layout.limits()
    if not path.exists():
        return []
    from ..stages.scan import read_scan

    table = read_scan(path)
    eff = settings.limit_efficiency
    if "limit_obs" not in table:
        return ["Limits: none could be set (``limits.csv`` says why in its ``note`` column).", ""]
    declared = table[(table["efficiency"] - eff).abs() < 1e-9]
    rows, several = [], len(settings.signals) > 1
    for (signal, method), grp in declared.groupby(["signal", "method"]):
        per_window = grp.groupby("window")[["limit_obs", "limit_exp_median"]].median()
        per_window = per_window.replace([float("inf")], float("nan")).dropna(subset=["limit_exp_median"])
        model = [f"{signal} ({settings.signal(signal).mass:g} TeV)"] if several else []
        if per_window.empty:
            rows.append(model + [method, "-", "no limit", "-", "-"])
            continue
        window, best = per_window["limit_exp_median"].idxmin(), per_window["limit_exp_median"].min()
        first = grp[grp["window"] == window].iloc[0]
        note = str(first["note"]) if "note" in grp and first["note"] == first["note"] else ""
        where = f"{window} ({first['sr_lo']:g}-{first['sr_hi']:g} TeV)" if first["sr_lo"] == first["sr_lo"] else window
        rows.append(model + [method, where, f"{per_window.loc[window, 'limit_obs']:.0f}", f"{best:.0f}", note or "-"])
    cut = "no cut" if eff >= 1 else f"the top {eff:g} of the sidebands (``limits.efficiency``, declared in advance)"
    seeds = table["seed"].nunique()
    per = "per signal model and method" if several else "per method"
    text = [f"Upper limits at {100 * settings.limits.cl:g} % CL on the injected signal events, at {cut}: {per} "
            "the window with the lowest expected limit" + (f" (medians of {seeds} background-only seeds)" if seeds > 1
                                                            else "") + "; every window, cut and band in ``limits.csv`` "
            "and the figures under Limits:", "",
            _table(rows, (["signal model"] if several else []) + ["method", "window (SR)", "observed", "expected",
                                                                  "note"])]
    if seeds > 1 and settings.data.backgrounds == "independent":
        # independent background-only pseudo-experiments test the bands: their limits should fall inside them
        ok = declared.dropna(subset=["limit_obs", "limit_exp_m1"])
        one = ((ok["limit_obs"] >= ok["limit_exp_m1"]) & (ok["limit_obs"] <= ok["limit_exp_p1"])).mean()
        two = ((ok["limit_obs"] >= ok["limit_exp_m2"]) & (ok["limit_obs"] <= ok["limit_exp_p2"])).mean()
        text += [f"Of the {len(ok)} observed limits of {seeds} independent background-only pseudo-experiments, "
                 f"{100 * one:.0f} % lie in the expected ±1σ band and {100 * two:.0f} % in the ±2σ band (68 % and "
                 "95 % if the bands are right; windows overlap, so these are correlated).", ""]
    return text


def backgrounds_text(settings) -> str:
    """How the pseudo-experiments' backgrounds were made: what the calibration and the limits' bands may claim."""
    if settings.data.backgrounds == "independent":
        how = ("generated anew for each seed" if settings.data.source == "synthetic" else
               "a Poisson bootstrap of the events for each seed (each event taken n ~ Poisson(1) times, copies in one "
               "fold)")
        return f"Backgrounds: independent per pseudo-experiment seed, {how} (``data.backgrounds: independent``)."
    return ("Backgrounds: every seed searches the same background events (``data.backgrounds: shared``), so a "
            "fluctuation of the background appears in every seed: the seeds' calibration and limits are not "
            "independent pseudo-experiments.")


# a template whose SR AUC against the background-only data is further from 0.5 than this (or than 3 of its statistical
# errors, where larger) is marked: the classifier tells the template from the SR background
TEMPLATE_AUC_MARGIN = 0.02


def templates_text(table: pd.DataFrame) -> str:
    """Per method with a template (a held-out reference: cathode, salad, idealized, ...): how far the SR data of the
    background-only pseudo-experiments are from it (out-of-fold AUC, 0.5: indistinguishable), and the windows where
    a classifier tells them apart: there it learns the template's flaws beside any signal."""
    if "sr_auc_vs_reference" not in table:
        return ""
    null = table[(table["injection"] == 0) & table["sr_auc_vs_reference"].notna()]
    if null.empty:
        return ""
    parts = []
    for method, grp in null.groupby("method", sort=True):
        per_window = grp.groupby("window").agg(auc=("sr_auc_vs_reference", "median"),
                                               n=("n_obs", "max"))  # the loosest cut: every SR event
        # Hanley-McNeil's error of an AUC of 0.5 with n events on each side
        sigma = np.sqrt(2.0 / (12.0 * per_window["n"].clip(lower=1)))
        off = per_window[(per_window["auc"] - 0.5).abs() > np.maximum(TEMPLATE_AUC_MARGIN, 3 * sigma)]
        text = f"{method}: median AUC {per_window['auc'].median():.3f}"
        if len(off):
            text += (" — TEMPLATE MISMODELLED in " + ", ".join(f"{w} ({r.auc:.3f})" for w, r in off.iterrows())
                     + ": the classifier learns the template's flaws there beside any signal (less sensitive, and it may sculpt: "
                     "read the calibration)")
        parts.append(text)
    return ("Templates (SR data of the background-only pseudo-experiments vs each method's template, out-of-fold AUC; "
            "0.50: the template is the SR background): " + "; ".join(parts) + ".")


def template_count_text(table: pd.DataFrame, true_templates=()) -> str:
    """Per method tested by the template count: what b's uncertainty holds. Without an ensemble of templates it is
    the template's statistics alone, and a template model's own error (a reweighter or a flow trained on other
    events) is not in it: marked, since its p0 are then too small wherever that error is large. The methods named in
    ``true_templates`` (the idealized reference) hold out a sample of the true background: no model, nothing to add."""
    if "template_replicas" not in table or "fit_message" not in table:
        return ""
    counted = table[table["fit_message"].astype(str).str.startswith("template count")]
    parts = []
    for method, grp in counted.groupby("method", sort=True):
        replicas = int(grp["template_replicas"].max())
        cut = grp[grp["efficiency"] < 1]
        validated = "n_bkg_err_nonclosure" in grp and cut["n_bkg_err_nonclosure"].notna().any()
        if validated:
            parts.append(f"{method}: the template's statistics"
                         + (f", the spread of {replicas} bootstrap replicas" if replicas >= 2 else "")
                         + " and the non-closure in its validation region (windows.validation; median "
                         f"{100 * (cut['nonclosure']).median():+.1f} % observed over predicted there, a systematic "
                         f"of median {100 * (cut['n_bkg_err_nonclosure'] / cut['n_bkg']).median():.1f} % of b after "
                         "a cut)")
        elif method in true_templates:
            parts.append(f"{method}: the template's statistics (a held-out sample of the true background: no model "
                         "whose error could be missing)")
        elif replicas >= 2:
            share = (cut["n_bkg_err_ensemble"] / cut["n_bkg"]).median() if len(cut) else float("nan")
            parts.append(f"{method}: the template's statistics and the spread of {replicas} bootstrap replicas of "
                         f"its reweighting (median {100 * share:.1f} % of b after a cut; the refitted reweighter or "
                         "w(m): a flow in the template is not varied)")
        else:
            parts.append(f"{method}: the template's statistics ONLY (no ensemble of templates: a template model's "
                         "own error is not in b; ``salad.replicas`` and ``context_weights.replicas`` give one to the "
                         "templates built on them, ``windows.validation`` a non-closure systematic)")
    if not parts:
        return ""
    return ("Template count, the background's uncertainty (a constrained nuisance in each p0): " + "; ".join(parts)
            + ".")


def methods_overview_text(table: pd.DataFrame, layout, truth_window: str) -> list[str]:
    """The methods side by side (``report.methods``) and the most sensitive calibrated one."""
    from .methods import OVERVIEW_HEADER, most_sensitive_text, overview, overview_rst

    calibration = pd.read_csv(layout.calibration()) if layout.calibration().exists() else None
    performance = pd.read_csv(layout.performance()) if layout.performance().exists() else None
    methods = overview(table, truth_window, performance, calibration)
    if methods.empty:
        return []
    return ["Methods side by side (median over seeds; ``methods.csv`` in the report's Methods category). The global Z "
            "is each scan's significance after the look-elsewhere effect over all its windows and cuts:", "",
            _table(overview_rst(methods), OVERVIEW_HEADER), most_sensitive_text(methods, truth_window), ""]


def chance_of_largest(min_p0: float, n: int) -> float:
    """How likely a background-only scan of ``n`` p0 gives one as small as ``min_p0``: 1 - (1 - p)^n (Sidak). The
    p0 of overlapping windows and nested cuts are correlated, fewer trials than n, so this overstates the chance: a
    method is marked only when even this is below 1 %. A largest Z of 3 among 400 p0 happens by chance 42 % of the
    time; a fixed Z threshold would call such a method miscalibrated."""
    if not np.isfinite(min_p0) or n <= 0:
        return float("nan")
    return float(-np.expm1(n * np.log1p(-min(max(min_p0, 0.0), 1.0))))


def summary_text(workdir: Path, configfile: Path) -> str:
    settings = load_settings(workdir, configfile)
    layout = settings.layout(workdir)
    parts = ["**Summary.**", ""]
    scan_csv = layout.pvalue_scan()
    if scan_csv.exists():
        from ..stages.scan import read_scan

        table = read_scan(scan_csv)
        for (injection, signal), grp in table.groupby(["injection", "signal"]):
            model = f" of signal {signal} ({settings.signal(signal).mass:g} TeV)" if signal else ""
            top = grp.dropna(subset=["z"]).sort_values("z", ascending=False).head(5)
            parts.append(f"Most significant windows at injection {injection}{model} (local Z of one window and cut; "
                         "the global Z of each scan is in the methods table below). A p0 shown as ``< p`` (and Z as "
                         "``≥ z``) is a bound: none of the pseudo-experiments of that test was as extreme "
                         "(``p0_bound`` in the table):")
            parts.append("")
            parts.append(_table(
                [[z_text(r.z, _bound(r)), p0_text(r.p0, _bound(r)),
                  f"{r.window} ({r.sr_lo:g}-{r.sr_hi:g} TeV)" if r.sr_lo == r.sr_lo else r.window, r.method,
                  f"{r.efficiency:g}", f"{r.n_obs:.10g} / {r.n_bkg:.1f} +- {r.n_bkg_err:.1f}", str(r.seed)]
                 for r in top.itertuples()],
                ["local Z", "p0", "window (SR)", "method", "efficiency", "observed / expected in SR", "seed"]))
            if injection > 0:
                best = grp.loc[grp.groupby("method")["z"].idxmax()]
                windows = sorted(set(best["window"]))
                verdict = ("all methods find their most significant window in " + windows[0]
                           if len(windows) == 1 else "methods disagree on the most significant window: "
                           + ", ".join(f"{r.method} {r.window} (Z {r.z:.1f})" for r in best.itertuples()))
                parts.append(f"Agreement at injection {injection}{model}: {verdict}.")
                parts.append("")
        truth = {name for name, run in settings.methods.items() if run.method.needs_truth}
        for text in (templates_text(table), template_count_text(table, truth)):
            if text:
                parts += [text, ""]
        parts += methods_overview_text(table, layout, settings.truth_window.name)
    else:
        parts.append("No p-value scan yet (``pvalue_scan.csv`` is missing): see the jobs below.")
        parts.append("")
    calibration_csv = layout.calibration()
    if calibration_csv.exists():
        from .methods import calibration_verdicts

        cal = pd.read_csv(calibration_csv)
        judged = calibration_verdicts(cal)
        verdicts = []
        for r in cal.itertuples():
            verdict, chance = judged[r.method]
            largest = z_text(r.max_z, bool(getattr(r, "max_z_bound", False)))
            excess = getattr(r, "ks_pvalue_excess", float("nan"))
            verdicts.append(f"{r.method}: {verdict} (largest injection-0 Z {largest} of {r.n} p0, {chance:.0%} likely "
                            f"by chance; KS p {r.ks_pvalue:.2f}"
                            + ("" if pd.isna(excess) else f", against false excesses {excess:.2f}")
                            + ("; its p0 larger than uniform: its Z are lower bounds" if verdict == "conservative"
                               else "") + ")")
        if verdicts:
            parts.append("Calibration (background-only pseudo-experiments): " + "; ".join(verdicts) + ".")
        else:
            parts.append("Calibration: not checked, the scan has no injection-0 (background-only) runs; "
                         "add 0 to ``injections`` to see whether the bump hunt is calibrated.")
        parts.append("")
    parts.extend(limits_text(settings, layout))
    parts.append(backgrounds_text(settings))
    parts.append("")
    parts.append("Methods of this scan:")
    parts.append("")
    parts.append(methods_text(settings))
    parts.append("")
    parts.append(f"Features ({len(settings.features)}): " + ", ".join(f"``{f}``" for f in settings.features) + ".")
    parts.append("")
    if settings.data.table and settings.data.table.weight:
        parts.append(f"Events are weighted by column ``{settings.data.table.weight}`` of ``{settings.data.table.path}``: "
                     "classifiers and CATHODE's flow train on the weights, observed and expected counts are sums of "
                     "weights, and p-values are computed on effective counts (``count_scale`` in the p-value table).")
        parts.append("")
    states = fold_states(settings, layout)
    counts = count_states(states)
    jobs = f"Jobs: {counts['done']} of {len(states)} training folds done"
    if counts["done"] < len(states):
        jobs += (f"; {counts['failed']} failed, {counts['interrupted']} interrupted, {counts['missing']} not run, "
                 f"{counts['stale']} trained with other settings than the config's")
    for name, group in model_states(settings, layout).items():
        done = count_states(group)
        jobs += f"; {done['done']} of {len(group)} {name} models done"
        if done["done"] < len(group):
            jobs += f" ({done['failed']} failed, {done['interrupted']} interrupted, {done['missing']} not run)"
    if counts["done"] < len(states) or "not run" in jobs:
        jobs += (". ``slidescan status`` lists the unfinished jobs with their logs and the command that reruns "
                 "exactly them")
    parts.append(jobs + ".")
    parts.append("")
    static = workdir / STATIC_DESCRIPTION
    if static.exists():
        parts.append(static.read_text())
    return "\n".join(parts)


def write_summary(workdir: Path, configfile: Path) -> Path:
    out = load_settings(workdir, configfile).layout(workdir).summary()
    text = summary_text(workdir, configfile)
    with atomic_path(out) as tmp:
        tmp.write_text(text)
    return out
