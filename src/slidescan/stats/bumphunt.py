"""One window's bump hunt: cut on the score, fit the sidebands, test the SR."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ..windows import REGION_SB_HIGH, REGION_SB_LOW, REGION_SR, Window
from .dijet import FitResult, fit_dijet, fit_dijet_ftest, poisson_scale, predict, window_edges
from .pvalue import TOYS_BELOW, asimov_z_uncertain, discovery_p0, toy_floor, z_from_p


@dataclass
class BumpHuntResult:
    efficiency: float
    threshold: float
    n_selected: int
    n_obs: float  # events in the SR; with weights, their sum of weights
    n_bkg: float
    n_bkg_err: float
    p0: float
    z: float
    fit_ok: bool
    fit_message: str
    fit_parameters: int = 0
    fit_deviance: float = float("nan")
    fit_bins: int = 0
    p0_calculator: str = "asymptotic"
    # the toys' floor 1 / (toys + 1): no toy was as extreme, so p0 is an upper bound and z a lower bound
    p0_bound: bool = False
    # truth known only: true signal events (sum of weights) selected in the SR, and the median Z they should give
    n_signal_selected: float = -1
    z_expected: float = float("nan")
    # sumw / sumw2 of the SR: n_obs, n_bkg and n_bkg_err times it are the effective counts tested (1 unweighted)
    count_scale: float = 1.0
    # sculpting (``sculpting``): the fraction of the SR's events kept over the fraction its sidebands' interpolate to
    # (1: the cut keeps the SR like its sidebands), and the Jensen-Shannon divergence of the kept mjj from all events'
    sr_efficiency_ratio: float = float("nan")
    mjj_jsd: float = float("nan")
    # the template count: the spread of b over the template's ensemble (in n_bkg_err, added in quadrature) and how
    # many replicas it had (0: none, b's uncertainty is the template's statistics alone)
    # (these and the fit by keyword only: a field added before them would silently take a positional argument's value)
    n_bkg_err_ensemble: float = field(default=float("nan"), kw_only=True)
    template_replicas: int = field(default=0, kw_only=True)
    # the template count with a validation region (windows.validation): its observed and predicted events at this
    # efficiency, its non-closure r - 1 (observed / predicted - 1) and the systematic it gives b (in n_bkg_err in
    # quadrature: b sqrt((r - 1)^2 + sigma_r^2), stats.template_count)
    vr_n_obs: float = field(default=float("nan"), kw_only=True)
    vr_n_bkg: float = field(default=float("nan"), kw_only=True)
    nonclosure: float = field(default=float("nan"), kw_only=True)
    n_bkg_err_nonclosure: float = field(default=float("nan"), kw_only=True)
    fit: FitResult | None = field(default=None, repr=False, compare=False, kw_only=True)

    def as_dict(self) -> dict:
        """The table row: every field but the fit object itself."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fit"}


def bump_hunt(
    mjj: np.ndarray, scores: np.ndarray, window: Window, efficiencies: list[float], bin_width: float,
    n_params: int | str = 3, labels: np.ndarray | None = None, calculator: str = "asymptotic", ntoys: int = 20000,
    seed: int = 0, weights: np.ndarray | None = None, region: np.ndarray | None = None,
) -> list[BumpHuntResult]:
    """For each efficiency: keep the top-scoring fraction of the window's events, fit, test the SR.

    With truth ``labels`` (labelled events), each row also gets the true signal selected in the SR and
    the expected (Asimov) Z for it over the predicted background and its uncertainty.

    The efficiency is a background efficiency measured blind to the SR: the threshold is the
    (1 - efficiency) quantile of the scores of the sideband events. (A quantile over all window
    events would cap the selected SR events at efficiency x window size, below the signal itself
    at tight cuts.)

    With ``weights`` (weighted simulation) the threshold is the weighted quantile, the histograms sum weights,
    the fit is the scaled Poisson likelihood of ``fit_dijet`` and the SR test is made on effective counts: the
    observed sum of weights, the prediction and its uncertainty times the SR's sumw / sumw2 (Bohm and Zech).
    Doubling every weight changes no p-value; unit weights give the unweighted results.

    ``region``: the events' region codes as the split assigned them (the column ``region``); without it (a bare
    spectrum) they are the window's regions of ``mjj``.
    """
    mjj, scores = np.asarray(mjj), np.asarray(scores)
    weights = None if weights is None else np.asarray(weights, float)
    low, sr, high = window_edges(window, bin_width)
    region = window.region(mjj) if region is None else np.asarray(region)
    sideband = np.isin(region, (REGION_SB_LOW, REGION_SB_HIGH))
    in_sr = region == REGION_SR
    edges = np.unique(np.concatenate([low, sr, high]))
    results = []
    for eff in efficiencies:
        if eff < 1 and not sideband.any():
            raise ValueError(f"window {window.name}: no sideband events to set the efficiency threshold")
        threshold = -np.inf if eff >= 1 else _threshold(scores[sideband], 1 - eff,
                                                        None if weights is None else weights[sideband])
        keep = scores > threshold if eff < 1 else np.ones(len(mjj), bool)
        sel, w = mjj[keep], None if weights is None else weights[keep]
        counts_low, counts_high = np.histogram(sel, low, weights=w)[0], np.histogram(sel, high, weights=w)[0]
        variances = None if w is None else [np.histogram(sel, low, weights=w * w)[0],
                                            np.histogram(sel, high, weights=w * w)[0]]
        n_obs = np.histogram(sel, sr, weights=w)[0].sum()
        n_obs = int(n_obs) if w is None else float(n_obs)
        if n_params == "ftest":
            fit = fit_dijet_ftest([low, high], [counts_low, counts_high], variance_sets=variances)
        else:
            fit = fit_dijet([low, high], [counts_low, counts_high], int(n_params), variance_sets=variances)
        b, b_err, p0 = float("nan"), float("nan"), float("nan")
        if fit.ok:
            b, b_err = predict(sr, fit)
        # the SR test on effective counts (a factor 1 without weights); an empty SR takes the sidebands' factor
        scale = 1.0
        if w is not None:
            sumw2 = float(np.histogram(sel, sr, weights=w * w)[0].sum())
            scale = n_obs / sumw2 if sumw2 > 0 else float(poisson_scale(np.concatenate([counts_low, counts_high]),
                                                                        np.concatenate(variances)).mean())
        used = calculator
        if calculator == "auto":
            used = "toys" if scale * b < TOYS_BELOW else "asymptotic"
        if fit.ok and b > 0:
            p0 = discovery_p0(scale * n_obs, scale * b, scale * b_err, used, ntoys, seed + int(round(1e6 * eff)))
        bound = bool(used == "toys" and np.isfinite(p0) and p0 <= toy_floor(ntoys) * (1 + 1e-9))
        n_sig, z_exp = -1, float("nan")
        if labels is not None:
            signal = keep & in_sr & (np.asarray(labels) == 1)
            n_sig = int(np.sum(signal)) if weights is None else float(np.sum(weights[signal]))
            z_exp = asimov_z_uncertain(scale * n_sig, scale * b, scale * b_err) if fit.ok and b > 0 else float("nan")
        results.append(BumpHuntResult(eff, threshold, len(sel), n_obs, b, b_err, p0, z_from_p(p0), fit.ok, fit.message,
                                      fit.n_params, fit.deviance, fit.n_bins, used, bound, n_sig, z_exp, scale,
                                      *sculpting(mjj, keep, in_sr, sideband, edges, weights), fit=fit))
    return results


def sculpting(mjj: np.ndarray, keep: np.ndarray, in_sr: np.ndarray, sideband: np.ndarray, edges: np.ndarray,
              weights: np.ndarray | None = None) -> tuple[float, float]:
    """How a cut shapes the background's mjj (read at injection 0, where the data are background).

    Why: a classifier that reads features correlated with mjj keeps background at some masses more than at others;
    where it keeps more of the SR than its sidebands say it should, it makes a bump of its own, which the sideband
    fit cannot know of (LaCATHODE, arXiv:2210.14924, classifies in the flow's latent space to avoid it). A smooth
    trend of the kept fraction with mjj is not a bump (the fit follows it), and the lower sideband holds most
    sideband events of a falling spectrum, so the SR is compared with the kept fractions of the two sidebands
    interpolated linearly to its mean mjj. Returns that ratio (1 without sculpting; 1.2: a 20 % excess made by the
    cut), and the Jensen-Shannon divergence (base 2) of the kept events' mjj histogram from all events' (0: the
    same shape; this one counts smooth trends too).
    """
    from scipy.spatial.distance import jensenshannon

    w = np.ones(len(mjj)) if weights is None else weights
    centre = np.average(mjj[in_sr], weights=w[in_sr]) if w[in_sr].sum() > 0 else np.nan
    points = []
    for side in (sideband & (mjj < centre), sideband & (mjj > centre)):
        if w[side].sum() > 0:
            points.append((np.average(mjj[side], weights=w[side]), w[keep & side].sum() / w[side].sum()))
    ratio = float("nan")
    if points and w[in_sr].sum() > 0:
        expected = points[0][1] if len(points) == 1 else np.interp(centre, *zip(*points))
        if expected > 0:
            ratio = float((w[keep & in_sr].sum() / w[in_sr].sum()) / expected)
    everything = np.histogram(mjj, edges, weights=w)[0]
    kept = np.histogram(mjj[keep], edges, weights=w[keep])[0]
    jsd = float(jensenshannon(everything, kept, base=2) ** 2) if kept.sum() > 0 and everything.sum() > 0 \
        else float("nan")
    return ratio, jsd


def _threshold(scores: np.ndarray, quantile: float, weights: np.ndarray | None) -> float:
    """The score above which a fraction ``1 - quantile`` of the sideband (its weight, with ``weights``) lies."""
    if weights is None:
        return float(np.quantile(scores, quantile))
    return float(np.quantile(scores, quantile, weights=weights, method="inverted_cdf"))
