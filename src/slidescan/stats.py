"""Bump hunt statistics: dijet fit of the sidebands, SR prediction, pyhf discovery p-value.

The selected mjj spectrum of a window is fitted outside the SR by a binned Poisson likelihood
(iminuit). The fit's covariance gives the uncertainty of the SR prediction, which enters the pyhf
model as a constrained nuisance (``shapesys``). p0 comes from the asymptotic q0 test statistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import pyhf
from iminuit import Minuit
from scipy import stats as sps

from .data import SQRT_S
from .windows import Window

pyhf.set_backend("numpy")
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(5)


def dijet_density(m: np.ndarray, params: np.ndarray) -> np.ndarray:
    """exp(p0) (1 - x)^p1 / x^(p2 + p3 ln x), x = mjj / sqrt(s); three or four parameters."""
    x = np.asarray(m) / SQRT_S
    p = list(params) + [0.0] * (4 - len(params))
    return np.exp(p[0] + p[1] * np.log1p(-x) - (p[2] + p[3] * np.log(x)) * np.log(x))


def bin_integrals(edges: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Integral of the dijet density over each bin (5-point Gauss-Legendre)."""
    lo, hi = edges[:-1], edges[1:]
    half, mid = 0.5 * (hi - lo), 0.5 * (hi + lo)
    nodes = mid[:, None] + half[:, None] * _GL_NODES[None, :]
    return (dijet_density(nodes, params) * _GL_WEIGHTS[None, :]).sum(1) * half


@dataclass
class FitResult:
    ok: bool
    params: np.ndarray
    covariance: np.ndarray | None
    message: str = ""
    deviance: float = float("nan")  # Poisson deviance of the fitted bins (chi2-like goodness of fit)
    n_bins: int = 0

    @property
    def n_params(self) -> int:
        return len(self.params)


def fit_dijet(edge_sets: list[np.ndarray], count_sets: list[np.ndarray], n_params: int = 3,
              start: np.ndarray | None = None) -> FitResult:
    """Binned Poisson maximum-likelihood fit of the dijet function.

    ``edge_sets`` are disjoint bin ranges fitted together (the two sidebands around an SR).
    ``start`` overrides the starting parameters.
    """
    counts = np.concatenate(count_sets).astype(float)
    if counts.sum() <= 0:
        return FitResult(False, np.full(n_params, np.nan), None, "no selected events in the sidebands")

    # ln(density) is linear in the parameters, but over a narrow window ln(1-x) and ln(x) are
    # almost collinear: fit in an orthonormalised basis (q = R p) so the Hessian is well conditioned
    centres = np.concatenate([0.5 * (e[1:] + e[:-1]) for e in edge_sets])
    _, r = np.linalg.qr(_basis(centres, n_params))
    r_inv = np.linalg.inv(r)

    def expected(p):
        return np.concatenate([bin_integrals(e, p) for e in edge_sets])

    def nll(*q):
        mu = expected(r_inv @ np.array(q))
        if not np.all(np.isfinite(mu)) or np.any(mu <= 0):
            return 1e30
        return float(np.sum(mu - counts * np.log(mu)))

    # start from a typical dijet shape with the normalisation matched to the counts; the
    # 4-parameter fit starts from the 3-parameter solution (it has no other good starting point)
    if start is None and n_params == 4:
        three = fit_dijet(edge_sets, count_sets, 3)
        if three.ok:
            start = np.append(three.params, 0.0)
    if start is None:
        start = np.array([0.0, 8.0, 4.0, 0.0][:n_params])
        start[0] = np.log(counts.sum() / expected(start).sum())
    minuit = Minuit(nll, *(r @ start))
    minuit.errordef = Minuit.LIKELIHOOD
    minuit.strategy = 1
    minuit.migrad()
    if not minuit.valid:
        minuit.migrad()
    params = r_inv @ np.array(minuit.values)
    if not minuit.valid:
        return FitResult(False, params, None, "fit did not converge (migrad invalid)")
    minuit.hesse()
    if not minuit.accurate:
        return FitResult(False, params, None, "fit covariance not accurate")
    mu = expected(params)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, counts * np.log(counts / mu), 0.0)
    deviance = float(2 * np.sum(mu - counts + terms))
    return FitResult(True, params, r_inv @ np.array(minuit.covariance) @ r_inv.T, "", deviance, len(counts))


def fit_dijet_ftest(edge_sets: list[np.ndarray], count_sets: list[np.ndarray], alpha: float = 0.05) -> FitResult:
    """Fit with 3 and 4 parameters; keep 4 only if an F-test prefers it at level ``alpha``.

    F = (D3 - D4) / (D4 / (n - 4)) with the Poisson deviances D; a 4-parameter fit that failed is
    never chosen, and the 3-parameter fit is returned (flagged if it failed itself).
    """
    three = fit_dijet(edge_sets, count_sets, 3)
    four = fit_dijet(edge_sets, count_sets, 4, start=np.append(three.params, 0.0) if three.ok else None)
    if not four.ok or not three.ok:
        return three if three.ok or not four.ok else four
    ndf = four.n_bins - 4
    if ndf <= 0:
        return three
    if four.deviance <= 0:
        return four if three.deviance > 0 else three
    f = (three.deviance - four.deviance) / (four.deviance / ndf)
    return four if sps.f.sf(f, 1, ndf) < alpha else three


def _basis(m: np.ndarray, n_params: int) -> np.ndarray:
    """Columns whose linear combination with the parameters is ln(dijet density)."""
    lx = np.log(np.asarray(m) / SQRT_S)
    return np.stack([np.ones_like(lx), np.log1p(-np.exp(lx)), -lx, -lx * lx][:n_params], axis=1)


def predict(edges_sr: np.ndarray, fit: FitResult) -> tuple[float, float]:
    """Predicted background in the SR bins and its uncertainty from the fit covariance."""
    value = float(bin_integrals(edges_sr, fit.params).sum())
    jac = np.zeros(len(fit.params))
    for i in range(len(fit.params)):
        step = 1e-5 * max(1.0, abs(fit.params[i]))
        up, down = fit.params.copy(), fit.params.copy()
        up[i] += step
        down[i] -= step
        jac[i] = (bin_integrals(edges_sr, up).sum() - bin_integrals(edges_sr, down).sum()) / (2 * step)
    return value, float(np.sqrt(max(jac @ fit.covariance @ jac, 0.0)))


def discovery_p0(n_obs: float, b: float, b_err: float) -> float:
    """Asymptotic discovery p-value (q0) of ``n_obs`` over background ``b`` +- ``b_err`` with pyhf."""
    if b <= 0 or not np.isfinite(b):
        raise ValueError(f"background prediction must be positive and finite, got {b}")
    if n_obs <= b:
        # with mu >= 0 the best fit of a deficit is mu = 0, so q0 = 0 exactly; the numerical
        # minimum would leave q0 ~ 1e-8 and a p0 a hair below 0.5
        return 0.5
    s_template = max(b, 1.0)
    background = {"name": "background", "data": [b], "modifiers": []}
    if b_err > 0:
        background["modifiers"].append({"name": "bkg_uncertainty", "type": "shapesys", "data": [b_err]})
    spec = {"channels": [{"name": "sr", "samples": [
        {"name": "signal", "data": [s_template], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
        background,
    ]}]}
    model = pyhf.Model(spec, poi_name="mu")
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, 10.0 * (n_obs + 10.0) / s_template)
    data = [float(n_obs), *model.config.auxdata]
    p0 = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", par_bounds=bounds)
    return float(np.clip(p0, 0.0, 0.5))


def z_from_p(p: float) -> float:
    return float(sps.norm.isf(p)) if np.isfinite(p) else float("nan")


def asimov_z(s: float, b: float) -> float:
    """Median discovery significance for known s and b: sqrt(2((s+b) ln(1+s/b) - s))."""
    return float(np.sqrt(2 * ((s + b) * np.log1p(s / b) - s)))


def window_edges(window: Window, bin_width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges of the low sideband, the SR and the high sideband; SR edges are bin edges."""
    def edges(lo, hi):
        n = max(1, int(round((hi - lo) / bin_width)))
        return np.linspace(lo, hi, n + 1)

    return edges(window.sb_lo, window.sr_lo), edges(window.sr_lo, window.sr_hi), edges(window.sr_hi, window.sb_hi)


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
    fit: FitResult | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """The table row: every field but the fit object itself."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fit"}


def bump_hunt(
    mjj: np.ndarray, scores: np.ndarray, window: Window, efficiencies: list[float], bin_width: float,
    n_params: int | str = 3,
) -> list[BumpHuntResult]:
    """For each efficiency: keep the top-scoring fraction of the window's events, fit, test the SR.

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
        sel = mjj[scores > threshold] if eff < 1 else mjj
        counts_low = np.histogram(sel, low)[0]
        counts_high = np.histogram(sel, high)[0]
        n_obs = int(np.histogram(sel, sr)[0].sum())
        if n_params == "ftest":
            fit = fit_dijet_ftest([low, high], [counts_low, counts_high])
        else:
            fit = fit_dijet([low, high], [counts_low, counts_high], int(n_params))
        if fit.ok:
            b, b_err = predict(sr, fit)
            p0 = discovery_p0(n_obs, b, b_err) if b > 0 else float("nan")
        else:
            b, b_err, p0 = float("nan"), float("nan"), float("nan")
        results.append(BumpHuntResult(eff, threshold, len(sel), n_obs, b, b_err, p0, z_from_p(p0), fit.ok, fit.message,
                                      fit.n_params, fit.deviance, fit.n_bins, fit))
    return results
