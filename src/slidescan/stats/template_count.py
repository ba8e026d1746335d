"""The template count: the background after a cut predicted by the method's own template of the SR.

Why beside the sideband fit: the fit needs sidebands on both sides of a resonance and a smooth spectrum to
interpolate; a search without them (a non-resonant one, or a cut that sculpts mjj) can only take the prediction from
the template. The model, per efficiency e:

- the cut: the score above which a fraction e of the template's SR events lies (the template is the SR
  background, so e is a background efficiency, blind to the SR data);
- the prediction: b = N_SR f, with N_SR the SR data (sum of weights) and f the template's fraction above the cut
  (f = e up to ties); N_SR holds any signal too, so b is a little high where signal is (conservative);
- its uncertainty: the template's own statistics (sqrt(sum of the passing template events' squared weights) over
  the sum of its weights, times N_SR) or, where larger, the spread of the ensemble of templates: the k folds'
  held-out templates, each scored by its own fold's classifier, give k estimates of f, and their standard error
  std(f_k) / sqrt(k) times N_SR (a template or classifier that varies from fold to fold widens it);
- the test: the SR data above the cut, n, against b with that uncertainty as a constrained Gaussian nuisance (the
  one-bin pyhf model of ``pvalue.discovery_p0``, toys below 10 predicted events with ``auto``).

The pulls (n - b) / sqrt(b + sigma_b^2) of background-only pseudo-experiments have mean 0 and width 1
(tests/test_statistics.py). The prediction is only as good as the template: a template that misses the SR
background in some corner is a false excess there, which the injection-0 calibration shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import weights_of
from ..windows import REGION_SR
from .bumphunt import BumpHuntResult, _threshold, sculpting
from .dijet import window_edges
from .pvalue import TOYS_BELOW, asimov_z_uncertain, discovery_p0, toy_floor, z_from_p


def template_prediction(template: pd.DataFrame, threshold: float, n_sr: float) -> tuple[float, float]:
    """b = N_SR f and its uncertainty (the larger of the template's statistics and its folds' spread)."""
    w = weights_of(template, ones=True)
    keep = template["score"].to_numpy() > threshold
    total = w.sum()
    f = w[keep].sum() / total
    stat = np.sqrt((w[keep] ** 2).sum()) / total
    spread = 0.0
    if "fold" in template and template["fold"].nunique() > 1:
        per_fold = [w[keep & (template["fold"] == k).to_numpy()].sum() / w[(template["fold"] == k).to_numpy()].sum()
                    for k in np.unique(template["fold"])]
        spread = float(np.std(per_fold, ddof=1) / np.sqrt(len(per_fold)))
    return float(n_sr * f), float(n_sr * max(stat, spread))


def template_count(events: pd.DataFrame, template: pd.DataFrame, window, efficiencies: list[float],
                   calculator: str = "asymptotic", ntoys: int = 20000, seed: int = 0,
                   bin_width: float = 0.05) -> list[BumpHuntResult]:
    """One row per efficiency, like ``bump_hunt``'s (no fit: ``fit_ok`` true, ``fit_message`` "template count")."""
    if len(template) == 0:
        raise ValueError(f"window {window.name}: the template count needs the method's held-out SR template, and it "
                         "has no events")
    template = template[template["region"] == REGION_SR] if "region" in template else template
    mjj, scores = events["mjj"].to_numpy(float), events["score"].to_numpy(float)
    in_sr = (events["region"] == REGION_SR).to_numpy()
    sideband = ~in_sr
    weights = weights_of(events)
    w = np.ones(len(events)) if weights is None else weights
    n_sr = float(w[in_sr].sum())
    low, sr, high = window_edges(window, bin_width)
    edges = np.unique(np.concatenate([low, sr, high]))
    labels = events["label"].to_numpy() if "label" in events else None
    results = []
    for eff in efficiencies:
        threshold = -np.inf if eff >= 1 else _threshold(template["score"].to_numpy(), 1 - eff,
                                                        weights_of(template))
        keep = scores > threshold
        b, b_err = template_prediction(template, threshold, n_sr)
        n_obs = float(w[keep & in_sr].sum())
        n_obs = int(round(n_obs)) if weights is None else n_obs
        used = calculator
        if calculator == "auto":
            used = "toys" if b < TOYS_BELOW else "asymptotic"
        p0 = discovery_p0(n_obs, b, b_err, used, ntoys, seed + int(round(1e6 * eff))) if b > 0 else float("nan")
        bound = bool(used == "toys" and np.isfinite(p0) and p0 <= toy_floor(ntoys) * (1 + 1e-9))
        n_sig, z_exp = -1, float("nan")
        if labels is not None:
            signal = keep & in_sr & (labels == 1)
            n_sig = int(signal.sum()) if weights is None else float(w[signal].sum())
            z_exp = asimov_z_uncertain(n_sig, b, b_err) if b > 0 else float("nan")
        results.append(BumpHuntResult(eff, threshold, int(keep.sum()), n_obs, b, b_err, p0, z_from_p(p0), b > 0,
                                      "template count", 0, float("nan"), 1, used, bound, n_sig, z_exp, 1.0,
                                      *sculpting(mjj, keep, in_sr, sideband, edges, weights)))
    return results
