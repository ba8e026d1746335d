"""One window's bump hunt: cut on the score, fit the sidebands, test the SR."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from ..windows import Window
from .dijet import FitResult, fit_dijet, fit_dijet_ftest, predict, window_edges
from .pvalue import TOYS_BELOW, asimov_z_uncertain, discovery_p0, z_from_p


@dataclass
class BumpHuntResult:
    efficiency: float
    threshold: float
    n_selected: int
    n_obs: int
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
    # simulation only: true signal events selected in the SR, and the median Z they should give
    n_signal_selected: int = -1
    z_expected: float = float("nan")
    fit: FitResult | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """The table row: every field but the fit object itself."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fit"}


def bump_hunt(
    mjj: np.ndarray, scores: np.ndarray, window: Window, efficiencies: list[float], bin_width: float,
    n_params: int | str = 3, labels: np.ndarray | None = None, calculator: str = "asymptotic", ntoys: int = 20000,
    seed: int = 0,
) -> list[BumpHuntResult]:
    """For each efficiency: keep the top-scoring fraction of the window's events, fit, test the SR.

    With truth ``labels`` (simulation), each row also gets the true signal selected in the SR and
    the expected (Asimov) Z for it over the predicted background and its uncertainty.

    The efficiency is a background efficiency measured blind to the SR: the threshold is the
    (1 - efficiency) quantile of the scores of the sideband events. (A quantile over all window
    events would cap the selected SR events at efficiency x window size, below the signal itself
    at tight cuts.)
    """
    mjj, scores = np.asarray(mjj), np.asarray(scores)
    low, sr, high = window_edges(window, bin_width)
    sideband = ((mjj >= window.sb_lo) & (mjj < window.sr_lo)) | ((mjj >= window.sr_hi) & (mjj < window.sb_hi))
    results = []
    for eff in efficiencies:
        if eff < 1 and not sideband.any():
            raise ValueError(f"window {window.name}: no sideband events to set the efficiency threshold")
        threshold = -np.inf if eff >= 1 else float(np.quantile(scores[sideband], 1 - eff))
        keep = scores > threshold if eff < 1 else np.ones(len(mjj), bool)
        sel = mjj[keep]
        counts_low = np.histogram(sel, low)[0]
        counts_high = np.histogram(sel, high)[0]
        n_obs = int(np.histogram(sel, sr)[0].sum())
        if n_params == "ftest":
            fit = fit_dijet_ftest([low, high], [counts_low, counts_high])
        else:
            fit = fit_dijet([low, high], [counts_low, counts_high], int(n_params))
        b, b_err, p0 = float("nan"), float("nan"), float("nan")
        if fit.ok:
            b, b_err = predict(sr, fit)
        used = calculator
        if calculator == "auto":
            used = "toys" if b < TOYS_BELOW else "asymptotic"
        if fit.ok and b > 0:
            p0 = discovery_p0(n_obs, b, b_err, used, ntoys, seed + int(round(1e6 * eff)))
        n_sig, z_exp = -1, float("nan")
        if labels is not None:
            in_sr = (mjj >= window.sr_lo) & (mjj < window.sr_hi)
            n_sig = int(np.sum(keep & in_sr & (np.asarray(labels) == 1)))
            z_exp = asimov_z_uncertain(n_sig, b, b_err) if fit.ok and b > 0 else float("nan")
        results.append(BumpHuntResult(eff, threshold, len(sel), n_obs, b, b_err, p0, z_from_p(p0), fit.ok, fit.message,
                                      fit.n_params, fit.deviance, fit.n_bins, used, n_sig, z_exp, fit))
    return results
