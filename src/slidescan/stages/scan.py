"""The scan stage: every bump-hunt row with its look-elsewhere correction, and the calibration."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..io import write_csv


def gather(csv_files: list[str], out: str | os.PathLike, n_toys: int = 20000) -> pd.DataFrame:
    """All bump-hunt rows, with each scan's look-elsewhere-corrected (global) p-value.

    The global columns (``min_p0``, ``global_p0``, ``global_z``, ``global_p0_seeds``,
    ``n_null_seeds``) are the same on every row of one scan (method, signal model, injection, seed).
    """
    from ..stats.lookelsewhere import SCAN_KEYS, global_pvalues

    table = pd.concat([read_scan(f) for f in csv_files], ignore_index=True)
    table = table.sort_values(["method", "signal", "injection", "seed", "window", "efficiency"],
                              ascending=[True, True, True, True, True, False]).reset_index(drop=True)
    table = table.merge(global_pvalues(table, n_toys=n_toys), on=SCAN_KEYS, how="left")
    write_csv(out, table)
    return table


def read_scan(path: str | os.PathLike) -> pd.DataFrame:
    """A bump-hunt or p-value scan table, with its ``signal`` column as written: the model's name, "" where none
    was injected or the scan has one model (CSV keeps "" as an empty field, which pandas reads as missing; a table
    from before signal models has no column)."""
    table = pd.read_csv(path)
    table["signal"] = table["signal"].fillna("").astype(str) if "signal" in table else ""
    return table


def calibration(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, the injection-0 local p0 against uniform (KS on the excess half, p0 < 0.5).

    ``ks_pvalue`` is two-sided; ``ks_pvalue_excess`` one-sided, against more small p0 than uniform (false
    excesses) only: a test whose background uncertainty covers more than it must (a conservative systematic) gives
    p0 larger than uniform, which fails the two-sided test and passes this one (``report.methods``'s verdict
    "conservative"). Windows overlap and efficiencies are nested, so the p0 are correlated: the KS p-values are a
    guide, not an exact test.
    """
    from scipy import stats as sps

    rows = []
    for method, grp in table[table["injection"] == 0].groupby("method"):
        p0 = grp["p0"].dropna().to_numpy()
        excess = 2 * p0[p0 < 0.5]
        largest = grp["z"].idxmax() if grp["z"].notna().any() else None
        rows.append({"method": method, "n": len(p0), "n_deficit": int(np.sum(p0 >= 0.5)),
                     "ks_pvalue": float(sps.kstest(excess, "uniform").pvalue) if len(excess) else float("nan"),
                     # the empirical CDF above the uniform one: too many small p0
                     "ks_pvalue_excess": float(sps.kstest(excess, "uniform", alternative="greater").pvalue)
                     if len(excess) else float("nan"),
                     "min_p0": float(p0.min()) if len(p0) else float("nan"),
                     "max_z": float(grp["z"].max()),
                     # the largest Z is a lower bound when its p0 is the toys' floor
                     "max_z_bound": bool(largest is not None and grp.get("p0_bound", pd.Series(False, grp.index))
                                         .fillna(False).astype(bool)[largest])})
    return pd.DataFrame(rows, columns=["method", "n", "n_deficit", "ks_pvalue", "ks_pvalue_excess", "min_p0", "max_z",
                                       "max_z_bound"])


def signal_window_rows(table: pd.DataFrame, truth_mass: float) -> pd.DataFrame:
    """Rows of the window whose SR centre is closest to the true signal mass (the caller picks the model's rows);
    among regions without an mjj window (thresholds) the loosest, the first (``ScanSettings.truth_window``)."""
    if table["sr_lo"].isna().all():
        return table[table["window"] == min(table["window"])]
    centre = 0.5 * (table["sr_lo"] + table["sr_hi"])
    nearest = table.loc[(centre - truth_mass).abs().idxmin(), "window"]
    return table[table["window"] == nearest]
