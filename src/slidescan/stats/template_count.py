"""The template count: the background after a cut predicted by the method's own template of the SR.

Why beside the sideband fit: the fit needs sidebands on both sides of a resonance and a smooth spectrum to
interpolate; a search without them (a non-resonant one, or a cut that sculpts mjj) can only take the prediction from
the template. The model, per efficiency e:

- the cut: the score above which a fraction e of the template's SR events lies (the template is the SR
  background, so e is a background efficiency, blind to the SR data);
- the prediction: b = sum over folds k of N_SR,k f_k, with N_SR,k the SR data of fold k (sum of weights) and f_k
  the fraction above the cut of fold k's held-out template. Each fold's data and template events are scored by
  the same classifier (the one trained without that fold); the classifiers of different folds put their scores on
  different scales, so a fraction of the whole template would mix them (a first version that did found the folds
  of a 2-fold tiny scan 100 % apart). N_SR holds any signal too, so b is a little high where signal is
  (conservative);
- its uncertainty: the template's own statistics, the variance of each weighted fraction
  (sum over passing events of ((1 - f) w)^2 plus over failing of (f w)^2, over (sum w)^2; f (1 - f) / M for M
  unweighted events) times N_SR,k^2, summed over folds; and, where the template has an ensemble, the spread of
  its predictions: b computed with each replica's weights (the model refitted on bootstraps of its training events,
  ``salad.replicas``, ``context_weights.replicas``), their standard deviation added in quadrature
  (``n_bkg_err_ensemble``; ``template_replicas`` counts them, 0 where the template has none, and then the model's
  own uncertainty is not in b's: the report says so). The statistical term alone misses how much the template
  would move with another training of its model, which is what a mistuned simulation or a hard extrapolation makes
  large;
- with a validation region (``windows.validation``): the non-closure there, r - 1 with r = n_VR / b_VR the VR's
  observed over its predicted events at the same efficiency (the VR's own cut, classifier and template: the method
  run one step further from its CR), with the statistical error of r, sigma_r^2 = max(n_VR, 1) / b_VR^2 +
  r^2 (sigma_b,VR / b_VR)^2, in quadrature: b sqrt((r - 1)^2 + sigma_r^2) enters b's uncertainty
  (``n_bkg_err_nonclosure``; ``nonclosure`` is r - 1, the VR's counts ``vr_n_obs`` and ``vr_n_bkg``). It covers
  the extrapolation's bias (a mistuned simulation, a flow off where it was not trained), which neither term above
  sees. Why sigma_r too: |r - 1| alone is short wherever the VR fluctuated below the bias (a first version gave Z
  3.8 in 200 background-only toys of a template 34 % off, tests/test_statistics.py); the price is a systematic
  that grows at the tightest cuts, where the VR has few events;
- the test: the SR data above the cut, n, against b with that uncertainty as a constrained Gaussian nuisance (the
  one-bin pyhf model of ``pvalue.discovery_p0``, toys below 10 predicted events with ``auto``).

The pulls (n - b) / sqrt(b + sigma_b^2) of background-only pseudo-experiments have mean 0 and width 1
(tests/test_statistics.py). The prediction is only as good as the template: a template that misses the SR
background in some corner is a false excess there, which the injection-0 calibration shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import replica_columns, weights_of
from ..windows import REGION_SR
from .bumphunt import BumpHuntResult, _threshold, sculpting
from .pvalue import TOYS_BELOW, asimov_z_uncertain, discovery_p0, toy_floor, z_from_p


def template_prediction(template: pd.DataFrame, threshold: float, n_sr) -> tuple[float, float]:
    """b and its uncertainty: ``n_sr`` the SR data (sum of weights), a number, or per fold a mapping fold -> count
    when the scores come from one classifier per fold (the template's ``fold`` says which scored each of its
    events): then b = sum over folds of N_SR,k f_k, each fold's data predicted by its own classifier's template."""
    w = weights_of(template, ones=True)
    keep = template["score"].to_numpy() > threshold
    if not isinstance(n_sr, dict):
        n_sr = {None: float(n_sr)}
    folds = template["fold"].to_numpy() if "fold" in template and None not in n_sr else None
    b, variance = 0.0, 0.0
    for fold, n in n_sr.items():
        mine = np.ones(len(template), bool) if fold is None else folds == fold
        total = w[mine].sum()
        if total <= 0:
            raise ValueError(f"the template has no events of fold {fold} to predict that fold's SR data from")
        f = w[mine & keep].sum() / total
        # the template's own statistics, the variance of a weighted fraction (f (1 - f) / M unweighted)
        b += n * f
        variance += n ** 2 * (((1 - f) * w[mine & keep]) ** 2).sum() / total ** 2 \
            + n ** 2 * ((f * w[mine & ~keep]) ** 2).sum() / total ** 2
    return float(b), float(np.sqrt(variance))


def ensemble_spread(template: pd.DataFrame, threshold: float, n_sr) -> float:
    """The standard deviation of b over the template's replica weights (``data.replica_columns``); 0 with fewer
    than two replicas (no ensemble to measure a spread)."""
    columns = replica_columns(template)
    if len(columns) < 2:
        return 0.0
    bad = [c for c in columns if not np.isfinite(template[c].to_numpy(float)).all()]
    if bad:
        raise ValueError(f"the template's replica weights {', '.join(bad)} are missing or not finite for some events "
                         "(its folds were scored with different ensembles of the template): rerun the method's "
                         "training job, e.g. after deleting its scores file")
    plain = template.drop(columns=[*columns, "weight"], errors="ignore")
    b = [template_prediction(plain.assign(weight=template[c].to_numpy()), threshold, n_sr)[0] for c in columns]
    return float(np.std(b, ddof=1))


def nonclosure(validation: pd.DataFrame, efficiency: float) -> tuple[float, float, float, float]:
    """The validation region's observed and predicted events at ``efficiency``, its non-closure r - 1 and the
    relative systematic sqrt((r - 1)^2 + sigma_r^2) (both NaN where it predicts none)."""
    row = validation[np.isclose(validation["efficiency"].to_numpy(float), efficiency)]
    if len(row) != 1:
        raise ValueError(f"the validation region's template count has {len(row)} rows at efficiency {efficiency:g}, "
                         "not one: it was tested at other efficiencies than its SR")
    n_obs, n_bkg = float(row["n_obs"].iloc[0]), float(row["n_bkg"].iloc[0])
    if not n_bkg > 0:
        return n_obs, n_bkg, float("nan"), float("nan")
    b_err = float(row["n_bkg_err"].iloc[0]) if "n_bkg_err" in row else 0.0
    r = n_obs / n_bkg
    sigma_r = np.sqrt(max(n_obs, 1.0) / n_bkg ** 2 + (r * b_err / n_bkg) ** 2)
    return n_obs, n_bkg, r - 1, float(np.hypot(r - 1, sigma_r))


def template_count(events: pd.DataFrame, template: pd.DataFrame, window, efficiencies: list[float],
                   calculator: str = "asymptotic", ntoys: int = 20000, seed: int = 0,
                   bin_width: float = 0.05, validation: pd.DataFrame | None = None) -> list[BumpHuntResult]:
    """One row per efficiency, like ``bump_hunt``'s (no fit: ``fit_ok`` true, ``fit_message`` "template count").
    ``validation``: the rows of the region's validation region, whose non-closure enters b's uncertainty; where it
    predicts no events at a cut there is no systematic to take, and that row's p0 is NaN (``fit_ok`` false)."""
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
    by_fold = None  # the SR data of each fold, when each fold's classifier scored its own data and template events
    if "fold" in events and "fold" in template:
        folds = events["fold"].to_numpy()
        by_fold = {int(k): float(w[in_sr & (folds == k)].sum()) for k in np.unique(folds[in_sr])}
    edges = window.mjj_bins(bin_width)  # the sculpting of mjj, read against the sidebands where there are some
    labels = events["label"].to_numpy() if "label" in events else None
    results = []
    for eff in efficiencies:
        threshold = -np.inf if eff >= 1 else _threshold(template["score"].to_numpy(), 1 - eff,
                                                        weights_of(template))
        keep = scores > threshold
        n_sr_of = by_fold if by_fold is not None else n_sr
        b, b_err = template_prediction(template, threshold, n_sr_of)
        spread = ensemble_spread(template, threshold, n_sr_of)
        b_err = float(np.hypot(b_err, spread))
        vr = {}
        if validation is not None:
            vr_obs, vr_bkg, off, relative = nonclosure(validation, eff)
            vr = dict(vr_n_obs=vr_obs, vr_n_bkg=vr_bkg, nonclosure=off, n_bkg_err_nonclosure=relative * b)
            b_err = float(np.hypot(b_err, relative * b))
        n_obs = float(w[keep & in_sr].sum())
        n_obs = int(round(n_obs)) if weights is None else n_obs
        used = calculator
        if calculator == "auto":
            used = "toys" if b < TOYS_BELOW else "asymptotic"
        testable = b > 0 and np.isfinite(b_err)
        p0 = discovery_p0(n_obs, b, b_err, used, ntoys, seed + int(round(1e6 * eff))) if testable else float("nan")
        bound = bool(used == "toys" and np.isfinite(p0) and p0 <= toy_floor(ntoys) * (1 + 1e-9))
        n_sig, z_exp = -1, float("nan")
        if labels is not None:
            signal = keep & in_sr & (labels == 1)
            n_sig = int(signal.sum()) if weights is None else float(w[signal].sum())
            z_exp = asimov_z_uncertain(n_sig, b, b_err) if b > 0 else float("nan")
        message = "template count" if np.isfinite(b_err) else \
            "template count: its validation region predicts no events at this cut, so no non-closure to take"
        results.append(BumpHuntResult(eff, threshold, int(keep.sum()), n_obs, b, b_err, p0, z_from_p(p0), testable,
                                      message, 0, float("nan"), 1, used, bound, n_sig, z_exp, 1.0,
                                      *(sculpting(mjj, keep, in_sr, sideband, edges, weights) if edges is not None
                                        else (float("nan"), float("nan"))),
                                      n_bkg_err_ensemble=spread, template_replicas=len(replica_columns(template)),
                                      **vr))
    return results
