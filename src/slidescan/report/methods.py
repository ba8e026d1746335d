"""The report's "Methods" page: every method of the scan side by side, on the same pseudo-experiments.

Per method, signal model and injection, over seeds: the most significant window (where its largest local Z lies)
and whether it is the signal's own window, that local Z, the scan's global Z after the look-elsewhere effect,
max SIC and SIC at signal efficiency 0.3 in the signal's window where the truth is known, and the method's
injection-0 calibration verdict, and at injection 0 how much the tightest cut sculpts the background's mjj (the
SR's kept fraction over the sidebands'). Why the global Z is a column of its own, given once per row of seeds: it is a
property of a whole scan (every window and cut of one pseudo-experiment), computed from the asymptotic p0 of all
of them, not of the window in the row; printed beside the local Z of one window and cut, "local Z 8.2, global Z
8.8" reads like a bug when it is two different tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CALIBRATION_LEVEL = 0.01  # a method is "not calibrated" when its largest injection-0 Z or its KS p is below this


TRUSTED = ("calibrated", "conservative")  # the verdicts whose Z is evidence (conservative: a lower bound)


def calibration_verdicts(calibration: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """Per method: (verdict, chance of its largest injection-0 Z among its p0). "NOT CALIBRATED" when even the
    uncorrelated chance of that Z, or the one-sided KS p against too many small p0 (``ks_pvalue_excess``), is below
    1 %; "conservative" when only the two-sided KS p is (its p0 larger than uniform: the background's uncertainty
    covers more than it must, as a non-closure systematic does, so its Z are lower bounds); else "calibrated".
    A calibration table from before the one-sided column is judged by the two-sided KS alone."""
    from .summary import chance_of_largest

    out = {}
    for r in calibration.itertuples():
        chance = chance_of_largest(r.min_p0, r.n)
        excess = getattr(r, "ks_pvalue_excess", r.ks_pvalue)
        excess = r.ks_pvalue if pd.isna(excess) else excess
        if chance < CALIBRATION_LEVEL or excess < CALIBRATION_LEVEL:
            out[r.method] = ("NOT CALIBRATED", chance)
        else:
            out[r.method] = ("conservative" if r.ks_pvalue < CALIBRATION_LEVEL else "calibrated", chance)
    return out


def overview(table: pd.DataFrame, truth_window: str, performance: pd.DataFrame | None = None,
             calibration: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per method, signal model and injection (``table``: the p-value scan; ``performance``: out-of-fold
    SIC in the signal's window; ``calibration``: the injection-0 KS table)."""
    verdicts = calibration_verdicts(calibration) if calibration is not None and len(calibration) else {}
    rows = []
    for (method, signal, injection), grp in table.dropna(subset=["z"]).groupby(["method", "signal", "injection"]):
        best = grp.loc[grp.groupby("seed")["z"].idxmax()]  # each seed's most significant window and cut
        windows = best["window"].value_counts()
        row = {"method": method, "signal": signal, "injection": int(injection), "seeds": len(best),
               "most_significant_window": windows.index[0],
               "seeds_in_that_window": int(windows.iloc[0]),
               "seeds_in_true_window": int((best["window"] == truth_window).sum()) if injection > 0 else np.nan,
               "local_z": float(best["z"].median()), "local_z_min": float(best["z"].min()),
               "local_z_max": float(best["z"].max()),
               "global_z": float(best["global_z"].median()) if "global_z" in best else np.nan}
        if performance is not None and injection > 0:
            perf = performance[(performance["method"] == method) & (performance["injection"] == injection)]
            for key in ("max_sic_20", "sic_at_0.3", "s_over_b"):
                row[key] = float(perf[key].median()) if key in perf and perf[key].notna().any() else np.nan
        ok = verdicts.get(method)
        row["calibration"] = "not checked" if ok is None else ok[0]
        if injection == 0:
            row.update(sculpting_summary(grp))
        rows.append(row)
    columns = ["method", "signal", "injection", "seeds", "most_significant_window", "seeds_in_that_window",
               "seeds_in_true_window", "local_z", "local_z_min", "local_z_max", "global_z", "max_sic_20",
               "sic_at_0.3", "s_over_b", "calibration", "sculpting_efficiency", "sr_efficiency_ratio",
               "sr_efficiency_ratio_min", "sr_efficiency_ratio_max", "mjj_jsd"]
    return pd.DataFrame(rows).reindex(columns=columns)


def sculpting_summary(rows: pd.DataFrame) -> dict:
    """At the tightest cut of a background-only scan, over windows and seeds: the median (and range) of the SR's
    kept fraction over the sidebands' (``stats.bumphunt.sculpting``) and the median mjj Jensen-Shannon divergence."""
    if "sr_efficiency_ratio" not in rows or rows["sr_efficiency_ratio"].isna().all():
        return {}
    tightest = rows.loc[rows["efficiency"] < 1, "efficiency"].min()
    at = rows[np.isclose(rows["efficiency"], tightest)]
    ratio = at["sr_efficiency_ratio"].dropna()
    if ratio.empty:
        return {}
    return {"sculpting_efficiency": float(tightest), "sr_efficiency_ratio": float(ratio.median()),
            "sr_efficiency_ratio_min": float(ratio.min()), "sr_efficiency_ratio_max": float(ratio.max()),
            "mjj_jsd": float(at["mjj_jsd"].median())}


def most_sensitive_text(overview_table: pd.DataFrame, truth_window: str) -> str:
    """The summary's line: the calibrated method with the largest median local Z in the signal's window, at the
    smallest injection where any calibrated method finds it in most seeds."""
    trusted = overview_table["calibration"].isin(TRUSTED)
    found = overview_table[(overview_table["injection"] > 0) & trusted
                           & (overview_table["seeds_in_true_window"] > overview_table["seeds"] / 2)]
    if found.empty:
        calibrated = set(overview_table.loc[trusted, "method"])
        if not calibrated:
            return ("Most sensitive calibrated method: none; no method passed the injection-0 calibration (or the "
                    "scan has no injection 0).")
        return (f"Most sensitive calibrated method: none found the signal's window {truth_window} in most seeds at "
                "any injection.")
    lowest = found["injection"].min()
    at = found[found["injection"] == lowest].sort_values("local_z", ascending=False)
    top = at.iloc[0]
    signal = f" of signal {top['signal']}" if top["signal"] else ""
    others = ", ".join(f"{r.method} {r.local_z:.2f}" for r in at.iloc[1:].itertuples())
    return (f"Most sensitive calibrated method: **{top['method']}**: at the smallest injection{signal} where a "
            f"calibrated method finds the signal's window {truth_window} in most seeds ({lowest} events), its median "
            f"local Z there is {top['local_z']:.2f}" + (f" (then {others})" if others else "") + ".")


def overview_rst(overview_table: pd.DataFrame) -> list[list[str]]:
    """The rows of the summary's list-table (``OVERVIEW_HEADER``)."""
    def number(v) -> str:
        return "-" if pd.isna(v) else f"{v:.2f}"

    out = []
    for r in overview_table.to_dict("records"):
        truth = "-" if pd.isna(r["seeds_in_true_window"]) else f"{int(r['seeds_in_true_window'])} of {r['seeds']}"
        z = number(r["local_z"]) + (f" ({r['local_z_min']:.2f}-{r['local_z_max']:.2f})"
                                    if r["local_z_min"] != r["local_z_max"] else "")
        sculpted = "-"
        if not pd.isna(r.get("sr_efficiency_ratio")):
            sculpted = (f"{r['sr_efficiency_ratio']:.2f} ({r['sr_efficiency_ratio_min']:.2f}-"
                        f"{r['sr_efficiency_ratio_max']:.2f}) at {100 * r['sculpting_efficiency']:g} %")
        out.append([r["method"], f"{r['injection']}" + (f" ({r['signal']})" if r["signal"] else ""),
                    f"{r['most_significant_window']} ({r['seeds_in_that_window']} of {r['seeds']})", truth, z,
                    number(r["global_z"]), f"{number(r.get('max_sic_20'))} / {number(r.get('sic_at_0.3'))}",
                    r["calibration"], sculpted])
    return out


OVERVIEW_HEADER = ["method", "injection", "most significant window (seeds)", "true window (seeds)",
                   "local Z there, median (range)", "global Z of the scan (median)", "max SIC / SIC at 0.3",
                   "injection-0 calibration", "injection 0: SR kept / kept as the sidebands interpolate"]
