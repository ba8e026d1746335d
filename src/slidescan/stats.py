"""Bump hunt statistics: dijet fit of the sidebands, SR prediction, pyhf discovery p-value.

The selected mjj spectrum of a window is fitted outside the SR by a binned Poisson likelihood
(iminuit). The fit's covariance gives the uncertainty of the SR prediction, which enters the pyhf
model as a constrained nuisance (``shapesys``). p0 comes from the q0 test statistic, asymptotically
or, for windows with few events, from pseudo-experiments of the same test (``toy_p0``).
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


CALCULATORS = ("asymptotic", "toys", "auto")


def discovery_p0(n_obs: float, b: float, b_err: float, calculator: str = "asymptotic", ntoys: int = 2000,
                 seed: int = 0) -> float:
    """Discovery p-value (q0) of ``n_obs`` over background ``b`` +- ``b_err``.

    ``calculator``: "asymptotic" (pyhf, Cowan et al.), "toys" (:func:`toy_p0`, ``ntoys``
    pseudo-experiments seeded by ``seed``), or "auto": toys when fewer than 10 background events
    are expected, where the asymptotic formula is no longer reliable.
    """
    if calculator not in CALCULATORS:
        raise ValueError(f"bumphunt.p0_calculator: expected one of {CALCULATORS}, got {calculator!r}")
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
    if calculator == "toys" or (calculator == "auto" and b < TOYS_BELOW):
        return toy_p0(n_obs, b, b_err, ntoys, seed)
    p0 = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", par_bounds=bounds)
    return float(np.clip(p0, 0.0, 0.5))


TOYS_BELOW = 10.0


def q0_on_off(n_on, n_off, tau) -> np.ndarray:
    """Profile-likelihood q0 of one bin with a Poisson-constrained background (vectorised).

    The model pyhf builds in :func:`discovery_p0` (signal strength >= 0, ``shapesys`` background):
    n_on ~ Pois(mu s + b), n_off ~ Pois(tau b). Its profiled q0 has the closed form of Li & Ma
    (1983, eq. 17); ``tau = inf`` is a background known exactly. Deficits give q0 = 0.
    """
    n_on, n_off, tau = np.broadcast_arrays(*(np.asarray(v, float) for v in (n_on, n_off, tau)))
    with np.errstate(divide="ignore", invalid="ignore"):
        finite = np.isfinite(tau)
        b_known = np.where(finite, 1.0, n_off)  # with tau = inf, n_off carries b itself
        known = 2 * (np.where(n_on > 0, n_on * np.log(n_on / b_known), 0.0) - (n_on - b_known))
        total = n_on + n_off
        on = np.where(n_on > 0, n_on * np.log((1 + tau) * n_on / total), 0.0)
        off = np.where(n_off > 0, n_off * np.log((1 + tau) / tau * n_off / total), 0.0)
        q0 = np.where(finite, 2 * (on + off), known)
        excess = np.where(finite, n_on * tau > n_off, n_on > b_known)
    return np.where(excess, np.clip(q0, 0.0, None), 0.0)


def on_off(b, b_err):
    """(n_off, tau) of the auxiliary measurement that encodes b +- b_err; tau = inf when b_err is negligible."""
    b, b_err = np.asarray(b, float), np.asarray(b_err, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = np.where(b_err > 1e-4 * np.sqrt(b), b / np.square(b_err), np.inf)
    return np.where(np.isfinite(tau), tau * b, b), tau


def toy_p0(n_obs: float, b: float, b_err: float, ntoys: int = 20000, seed: int = 0) -> float:
    """p0 from pseudo-experiments of the same q0 test, for windows with few events.

    Toys are drawn at the background fitted under the background-only hypothesis (the conditional
    MLE given the observed count and the auxiliary measurement), and q0 is evaluated in closed form,
    so the test statistic's discreteness at small counts is exact (no fit noise at ties).
    """
    if n_obs <= b:
        return 0.5
    n_off, tau = on_off(b, b_err)
    q_obs = float(q0_on_off(n_obs, n_off, tau))
    generator = np.random.default_rng(seed)
    if np.isfinite(tau):
        b_null = (n_obs + n_off) / (1 + tau)
        toys_on = generator.poisson(b_null, ntoys)
        toys_off = generator.poisson(tau * b_null, ntoys)
    else:
        toys_on, toys_off = generator.poisson(b, ntoys), np.full(ntoys, float(b))
    q_toys = q0_on_off(toys_on, toys_off, tau)
    return float(min(0.5, (np.sum(q_toys >= q_obs * (1 - 1e-9)) + 1) / (ntoys + 1)))


def z_from_p(p: float) -> float:
    return float(sps.norm.isf(p)) if np.isfinite(p) else float("nan")


def asimov_z(s: float, b: float) -> float:
    """Median discovery significance for known s and b: sqrt(2((s+b) ln(1+s/b) - s))."""
    return float(np.sqrt(2 * ((s + b) * np.log1p(s / b) - s)))


def asimov_z_uncertain(s: float, b: float, sigma: float) -> float:
    """Median discovery Z for s over b with a background uncertainty sigma (Cowan et al., eq. 20 of
    arXiv:1007.1727's companion note); equals :func:`asimov_z` as sigma -> 0."""
    if s <= 0:
        return 0.0
    if sigma <= 1e-4 * np.sqrt(b):
        return asimov_z(s, b)
    v = sigma**2
    term1 = (s + b) * np.log((s + b) * (b + v) / (b**2 + (s + b) * v))
    term2 = b**2 / v * np.log1p(v * s / (b * (b + v)))
    return float(np.sqrt(max(2 * (term1 - term2), 0.0)))


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
