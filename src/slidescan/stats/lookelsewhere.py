"""Look-elsewhere effect: the global p-value of the smallest local p0 of a scan.

A scan tests many windows and several efficiencies; its smallest local p0 is far more often small
than a single test's. The global p-value is the probability, under background only, that a scan
gives a local p0 at least as small as the one observed somewhere. It is estimated two ways:

- **toys from the fitted shapes**: per window, a true background is drawn within the fit's
  uncertainty around each prediction, SR counts are drawn from it at the loosest efficiency and
  thinned binomially to the tighter ones (the selections are nested, so a fluctuation at 0.1
  carries into 0.01). Windows are drawn independently. Overlapping
  windows are positively correlated, so treating them as independent overstates the number of
  trials: the toy global p-value is conservative (an upper bound).
- **injection-0 seeds**: the fraction of background-only pseudo-experiments of the same method
  whose smallest local p0 is at least as small. These include whatever the classifiers do to the
  background, but a scan has only as many of them as it has seeds.

Local p0 in the toys uses the closed form of the asymptotic q0 for one bin with a Poisson-
constrained background (Li & Ma 1983, eq. 17, with n_off = tau b, tau = (b/sigma)^2), which is the
profile-likelihood test pyhf evaluates for the same model (checked in the tests).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .pvalue import on_off, q0_on_off

# one scan: a method on one pseudo-experiment (signal: the model injected, "" for none or a one-model scan)
SCAN_KEYS = ["method", "signal", "injection", "seed"]


def asymptotic_p0(n_obs, b, b_err) -> np.ndarray:
    """One-sided asymptotic p0 of n_obs over b +- b_err (vectorised); 0.5 for deficits."""
    n_off, tau = on_off(b, b_err)
    p0 = sps.norm.sf(np.sqrt(q0_on_off(n_obs, n_off, tau)))
    return np.where(np.asarray(n_obs) > np.asarray(b), p0, 0.5)


def effective(rows: pd.DataFrame, column: str) -> np.ndarray:
    """A count column of bump-hunt rows (n_obs, n_bkg, n_bkg_err) as the Poisson count that was tested: times
    ``count_scale`` (sumw / sumw2 of weighted inputs; a table without the column is unweighted)."""
    scale = rows["count_scale"].to_numpy(float) if "count_scale" in rows else 1.0
    return rows[column].to_numpy(float) * scale


def toy_min_p0(rows: pd.DataFrame, n_toys: int, seed: int) -> np.ndarray:
    """Smallest local p0 of each of ``n_toys`` background-only scans drawn from the fitted predictions."""
    generator = np.random.default_rng(seed)
    best = np.full(n_toys, 0.5)
    for _, grp in rows.dropna(subset=["n_bkg", "n_bkg_err"]).groupby("window"):
        grp = grp.sort_values("efficiency", ascending=False)
        b, err = effective(grp, "n_bkg"), effective(grp, "n_bkg_err")
        # the true background of each toy: the prediction shifted within its uncertainty
        truth = np.clip(b[:, None] + err[:, None] * generator.standard_normal((len(b), n_toys)), 1e-9, None)
        counts = generator.poisson(truth[0])
        for i in range(len(b)):
            if i > 0:
                counts = generator.binomial(counts, np.clip(truth[i] / truth[i - 1], 0.0, 1.0))
            best = np.minimum(best, asymptotic_p0(counts, b[i], err[i]))
    return best


MIN_TOYS_BELOW = 20


def trials_factor(toy_min_p0: np.ndarray, quantile: float = 0.05) -> float:
    """Effective number of independent tests N, from P(min p0 <= p*) = 1 - (1 - p*)^N at the toys'
    5 % quantile p*: what extrapolates the global p-value beyond the reach of the toys."""
    p_star = float(np.quantile(toy_min_p0, quantile))
    if not 0 < p_star < 0.5:
        return 1.0
    return float(max(1.0, np.log1p(-quantile) / np.log1p(-p_star)))


def global_pvalues(table: pd.DataFrame, n_toys: int = 20000, seed: int = 1) -> pd.DataFrame:
    """Per scan (method, signal model, injection, seed): smallest local p0 and its global p-value, both ways."""
    # a table without models (one written before issue 31, or a library user's) is a one-model scan
    table = table.assign(signal=table["signal"].fillna("") if "signal" in table else "")
    out = []
    null_min = {
        key: grp["p0"].min() for key, grp in table[table["injection"] == 0].groupby(["method", "seed"])
    }
    for key, rows in table.groupby(SCAN_KEYS):
        method, scan = key[0], dict(zip(SCAN_KEYS, key))
        fitted = rows.dropna(subset=["n_bkg", "n_bkg_err", "p0"])
        if fitted.empty:
            out.append({**scan, "min_p0": np.nan,
                        "min_p0_bound": False,
                        "global_p0": np.nan, "global_z": np.nan, "trials_factor": np.nan,
                        "global_p0_seeds": np.nan, "n_null_seeds": 0})
            continue
        observed = float(asymptotic_p0(*(effective(fitted, c) for c in ("n_obs", "n_bkg", "n_bkg_err"))).min())
        toys = toy_min_p0(fitted, n_toys, seed)
        trials = trials_factor(toys)
        n_below = int(np.sum(toys <= observed))
        if n_below >= MIN_TOYS_BELOW:
            global_p = n_below / n_toys
        else:
            # too few toys that far out: extrapolate with the effective number of independent tests
            global_p = float(-np.expm1(trials * np.log1p(-observed)))
        nulls = np.array([v for (m, s), v in null_min.items() if m == method])
        min_p0 = float(fitted["p0"].min())
        bounds = fitted["p0_bound"].fillna(False).astype(bool) if "p0_bound" in fitted else None
        out.append({**scan, "min_p0": min_p0,
                    "min_p0_bound": bool(bounds is not None and bounds[fitted["p0"].idxmin()]),
                    "global_p0": float(global_p), "global_z": float(max(sps.norm.isf(global_p), 0.0)),
                    "trials_factor": trials,
                    "global_p0_seeds": float(np.mean(nulls <= min_p0)) if len(nulls) else np.nan,
                    "n_null_seeds": len(nulls)})
    return pd.DataFrame(out)
