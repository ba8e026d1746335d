"""Discovery p-values: pyhf's asymptotic q0, exact pseudo-experiments at small counts, Asimov Z."""

from __future__ import annotations

import numpy as np
import pyhf
from scipy import stats as sps

pyhf.set_backend("numpy")


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
    model = one_bin_model(s_template, b, b_err)
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, 10.0 * (n_obs + 10.0) / s_template)
    data = [float(n_obs), *model.config.auxdata]
    if calculator == "toys" or (calculator == "auto" and b < TOYS_BELOW):
        return toy_p0(n_obs, b, b_err, ntoys, seed)
    p0 = pyhf.infer.hypotest(0.0, data, model, test_stat="q0", par_bounds=bounds)
    return float(np.clip(p0, 0.0, 0.5))


TOYS_BELOW = 10.0


def one_bin_model(signal: float, b: float, b_err: float, signal_err: float = 0.0) -> "pyhf.Model":
    """The SR as pyhf sees it: a signal template scaled by ``mu`` over background ``b``, with ``b_err`` (when > 0)
    a Poisson-constrained (``shapesys``) nuisance. The p0 and the limits test this one model.

    ``signal_err`` (relative, when > 0) is an uncertainty on the signal's normalisation, a Gaussian-constrained
    ``normsys`` whose up and down variations are 1 + err and 1 / (1 + err): a log-normal factor that keeps the
    signal positive (the limits' efficiency scatter between pseudo-experiments, stats.limits)."""
    background = {"name": "background", "data": [float(b)], "modifiers": []}
    if b_err > 0:
        background["modifiers"].append({"name": "bkg_uncertainty", "type": "shapesys", "data": [float(b_err)]})
    signal_modifiers = [{"name": "mu", "type": "normfactor", "data": None}]
    if signal_err > 0:
        signal_modifiers.append({"name": "signal_uncertainty", "type": "normsys",
                                 "data": {"hi": 1.0 + float(signal_err), "lo": 1.0 / (1.0 + float(signal_err))}})
    spec = {"channels": [{"name": "sr", "samples": [
        {"name": "signal", "data": [float(signal)], "modifiers": signal_modifiers},
        background,
    ]}]}
    return pyhf.Model(spec, poi_name="mu")


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


def toy_floor(ntoys: int) -> float:
    """The smallest p0 that ``ntoys`` pseudo-experiments can give, ``1 / (ntoys + 1)``: a p0 there is only a bound
    (no toy was as extreme as the data; the true p0 is smaller), and is reported as one (``p0_bound``)."""
    return 1.0 / (ntoys + 1)


def toy_p0(n_obs: float, b: float, b_err: float, ntoys: int = 20000, seed: int = 0) -> float:
    """p0 from pseudo-experiments of the same q0 test, for windows with few events.

    Toys are drawn at the background fitted under the background-only hypothesis (the conditional
    MLE given the observed count and the auxiliary measurement), and q0 is evaluated in closed form,
    so the test statistic's discreteness at small counts is exact (no fit noise at ties). With no
    toy as extreme as the data it returns :func:`toy_floor`, an upper bound.
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


