"""The dijet fit of the sidebands and its prediction in the SR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from iminuit import Minuit
from scipy import stats as sps

from ..data import SQRT_S
from ..windows import Window

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


def poisson_scale(sumw: np.ndarray, sumw2: np.ndarray) -> np.ndarray:
    """Per bin, the factor that turns a sum of weights into an effective Poisson count (Bohm and Zech, "Statistics
    of weighted Poisson events", NIM A 748 (2014) 1): sumw / sumw2. With unit weights it is 1; an empty bin takes
    the ratio of the totals."""
    sumw, sumw2 = np.asarray(sumw, float), np.asarray(sumw2, float)
    total = sumw.sum() / sumw2.sum() if sumw2.sum() > 0 else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sumw2 > 0, sumw / sumw2, total)


def fit_dijet(edge_sets: list[np.ndarray], count_sets: list[np.ndarray], n_params: int = 3,
              start: np.ndarray | None = None, variance_sets: list[np.ndarray] | None = None) -> FitResult:
    """Binned Poisson maximum-likelihood fit of the dijet function.

    ``edge_sets`` are disjoint bin ranges fitted together (the two sidebands around an SR).
    ``start`` overrides the starting parameters. With ``variance_sets`` (sums of squared weights per bin),
    ``count_sets`` are sums of weights and the likelihood is the scaled Poisson of :func:`poisson_scale`:
    each bin's term is multiplied by its effective-count factor, so the fitted uncertainties follow the
    effective number of events, not the sum of weights.
    """
    counts = np.concatenate(count_sets).astype(float)
    if counts.sum() <= 0:
        return FitResult(False, np.full(n_params, np.nan), None, "no selected events in the sidebands")
    scale = 1.0 if variance_sets is None else poisson_scale(counts, np.concatenate(variance_sets))

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
        return float(np.sum(scale * (mu - counts * np.log(mu))))

    # start from a typical dijet shape with the normalisation matched to the counts; the
    # 4-parameter fit starts from the 3-parameter solution (it has no other good starting point)
    if start is None and n_params == 4:
        three = fit_dijet(edge_sets, count_sets, 3, variance_sets=variance_sets)
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
    deviance = float(2 * np.sum(scale * (mu - counts + terms)))
    return FitResult(True, params, r_inv @ np.array(minuit.covariance) @ r_inv.T, "", deviance, len(counts))


def fit_dijet_ftest(edge_sets: list[np.ndarray], count_sets: list[np.ndarray], alpha: float = 0.05,
                    variance_sets: list[np.ndarray] | None = None) -> FitResult:
    """Fit with 3 and 4 parameters; keep 4 only if an F-test prefers it at level ``alpha``.

    F = (D3 - D4) / (D4 / (n - 4)) with the Poisson deviances D; a 4-parameter fit that failed is
    never chosen, and the 3-parameter fit is returned (flagged if it failed itself).
    """
    three = fit_dijet(edge_sets, count_sets, 3, variance_sets=variance_sets)
    four = fit_dijet(edge_sets, count_sets, 4, start=np.append(three.params, 0.0) if three.ok else None,
                     variance_sets=variance_sets)
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


def window_edges(window: Window, bin_width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin edges of the low sideband, the SR and the high sideband; SR edges are bin edges."""
    def edges(lo, hi):
        n = max(1, int(round((hi - lo) / bin_width)))
        return np.linspace(lo, hi, n + 1)

    return edges(window.sb_lo, window.sr_lo), edges(window.sr_lo, window.sr_hi), edges(window.sr_hi, window.sb_hi)


