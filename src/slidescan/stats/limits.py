"""Upper limits when nothing is found: CLs on the selected signal, and the injected signal it excludes.

Why the efficiency is solved for and not measured once: a weakly supervised classifier learns the signal from
the data, so the fraction of an injected signal that its cut keeps grows with how much signal there is (with
S/B -> 0 there is nothing to learn). An efficiency measured with 800 injected events overstates what the cut
keeps of 200, and a limit computed with it would exclude signals the search cannot see. So the selection
efficiency eps(N) (true signal events in the SR after the cut over injected events, out-of-fold scores,
averaged over seeds) is measured at every injected strength N, the CLs limit s95 is set on the *selected*
signal count, and the excluded strength is the N where N eps(N) = s95: the efficiency used is the one at the
excluded strength. This is how the published searches do it (inject, rerun the whole procedure; ATLAS,
arXiv:2005.02983), and slidescan already has the injection axis.

The statistical model of one window and cut is the bump hunt's: n_obs ~ Pois(s + b), with the sideband fit's
b +- b_err a Poisson-constrained nuisance (pyhf ``shapesys``). With many expected background events the limit
is pyhf's asymptotic CLs (q~mu, Cowan et al., arXiv:1007.1727). With few (``TOYS_BELOW``), where asymptotics
fail, the closed form: CLs with the count as test statistic, the background integrated over a gamma density
of the same mean and width (Cousins and Highland). With b known exactly that is the textbook Poisson CLs (it
equals the flat-prior Bayesian limit: n = 0 gives s95 = -ln 0.05 = 3.00 whatever b is), and it agrees with
pseudo-experiments at small counts (``tests/test_limits.py``).

The efficiency is a mean over pseudo-experiments, but one experiment's classifier keeps more or less of the
same signal than another's (its networks, its folds, the signal events it drew). An experiment whose efficiency
is below the mean shows less excess than the mean predicts, and a limit that takes the mean excludes the signal
it holds: on the synthetic W' at 4.5 TeV such limits excluded an injected signal in 6 of 15 pseudo-experiments
(docs/benchmarks.md, "Upper limits"). So the scatter of the efficiency between pseudo-experiments, beyond the
binomial counting the Poisson term already holds, is a log-normal nuisance on the signal (pyhf ``normsys``; the
closed form averages over it as over the background), taken at the excluded strength like the efficiency
(:func:`injected_limit`). With one pseudo-experiment per strength it cannot be measured and the rows say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import special
from scipy import stats as sps

from .pvalue import TOYS_BELOW, one_bin_model

# the expected limit's quantiles: -2 sigma, -1 sigma, median, +1 sigma, +2 sigma of the background-only outcomes
BANDS = ("m2", "m1", "median", "p1", "p2")
BAND_QUANTILES = sps.norm.cdf([-2.0, -1.0, 0.0, 1.0, 2.0])
CALCULATORS = ("auto", "asymptotic", "counting")
_NODES = 400  # quantile nodes of the background's gamma density
_SIGNAL_NODES = 64  # quantile nodes of the signal's log-normal factor


@dataclass(frozen=True)
class Limit:
    """The CLs upper limit on the selected signal count: observed, expected (``BANDS``), how it was computed."""

    observed: float
    expected: tuple[float, float, float, float, float]
    calculator: str


def _background_nodes(b: float, b_err: float) -> np.ndarray:
    """Equally probable values of the background: the gamma density of mean b and width b_err (b itself when
    b_err is negligible)."""
    if b_err <= 1e-4 * np.sqrt(b):
        return np.array([float(b)])
    shape, scale = (b / b_err) ** 2, b_err**2 / b
    return sps.gamma.ppf((np.arange(_NODES) + 0.5) / _NODES, shape, scale=scale)


def _signal_nodes(signal_err: float) -> np.ndarray:
    """Equally probable values of the signal's log-normal factor (1 + err) ** alpha, alpha ~ N(0, 1): what pyhf's
    ``normsys`` with up 1 + err and down 1 / (1 + err) gives beyond one standard deviation."""
    if signal_err <= 0:
        return np.array([1.0])
    alpha = sps.norm.ppf((np.arange(_SIGNAL_NODES) + 0.5) / _SIGNAL_NODES)
    return (1.0 + signal_err) ** alpha


def _poisson_cdf(n: float, mean) -> np.ndarray:
    """P(N <= n) for N ~ Pois(mean); n may be an effective (non-integer) count of weighted events."""
    return special.gammaincc(np.floor(n) + 1.0, np.asarray(mean, float))


def counting_cls(s, n_obs: float, b: float, b_err: float = 0.0, signal_err: float = 0.0) -> np.ndarray:
    """CLs of signal ``s`` (an array) for ``n_obs`` events over b +- b_err, the count the test statistic:
    P(n <= n_obs | s + b) / P(n <= n_obs | b), each averaged over the background's density (and over the
    signal's log-normal factor of relative width ``signal_err``)."""
    nodes = _background_nodes(b, b_err)
    s = np.atleast_1d(np.asarray(s, float))[:, None] * _signal_nodes(signal_err)[None, :]
    numerator = _poisson_cdf(n_obs, s[:, :, None] + nodes[None, None, :]).mean((1, 2))
    return numerator / _poisson_cdf(n_obs, nodes).mean()


def pyhf_toy_cls(s: float, n_obs: float, b: float, b_err: float = 0.0, ntoys: int = 4000) -> float:
    """CLs of signal ``s`` from pyhf's own pseudo-experiments of the one-bin model (q~mu, nuisance parameters at their
    conditional fits: fully frequentist), for checking :func:`counting_cls` at small counts. Built from the toy
    calculator's distributions: pyhf 0.7.6's ``hypotest(calctype="toybased")`` fails under numpy 2 on the expected
    set (``numpy.percentile(interpolation=...)``), which this does not compute."""
    import pyhf

    model = one_bin_model(float(s), b, b_err if b_err > 1e-4 * np.sqrt(b) else 0.0)
    data = [float(n_obs), *model.config.auxdata]
    calculator = pyhf.infer.calculators.ToyCalculator(data, model, test_stat="qtilde", ntoys=ntoys,
                                                      track_progress=False)
    observed = calculator.teststatistic(1.0)
    signal_like, background_like = calculator.distributions(1.0)
    return float(signal_like.pvalue(observed) / background_like.pvalue(observed))


def counting_limit(n_obs: float, b: float, b_err: float = 0.0, cl: float = 0.95, signal_err: float = 0.0) -> float:
    """The closed-form CLs upper limit on the signal count (:func:`counting_cls` = 1 - cl)."""
    alpha = 1.0 - cl

    def cls(s):
        return counting_cls(s, n_obs, b, b_err, signal_err)[0] - alpha

    hi = max(10.0, 2.0 * n_obs + 10.0 * np.sqrt(b + b_err**2 + 1.0))
    while cls(hi) > 0:
        hi *= 2.0
    return float(optimize.brentq(cls, 0.0, hi, xtol=1e-6))


def counting_expected(b: float, b_err: float = 0.0, cl: float = 0.95, signal_err: float = 0.0) -> tuple[float, ...]:
    """The expected closed-form limits: the limit at the ``BAND_QUANTILES`` of the background-only count (its
    density averaged over the background's), the count being discrete."""
    nodes = _background_nodes(b, b_err)
    top = int(np.ceil(b + 10 * np.sqrt(b + b_err**2) + 10))
    counts = np.arange(top + 1)
    cdf = _poisson_cdf(counts[:, None], nodes[None, :]).mean(1)
    quantile_counts = [int(counts[min(np.searchsorted(cdf, q), top)]) for q in BAND_QUANTILES]
    return tuple(counting_limit(n, b, b_err, cl, signal_err) for n in quantile_counts)


def asymptotic_limit(n_obs: float, b: float, b_err: float = 0.0, cl: float = 0.95,
                     signal_err: float = 0.0) -> tuple[float, tuple]:
    """pyhf's asymptotic CLs (q~mu) upper limit on the signal count and its expected limits (``BANDS``)."""
    import pyhf

    # the signal template sets the POI's scale: pyhf searches mu in its bounds (0, 10), so the limit lands near mu 1
    template = max(1.0, (max(n_obs - b, 0.0) + 2.0 * np.sqrt(b + b_err**2)) * (1.0 + signal_err))
    model = one_bin_model(template, b, b_err if b_err > 1e-4 * np.sqrt(b) else 0.0, signal_err)
    data = [float(n_obs), *model.config.auxdata]
    # the scan widens its bracket past mu = 10 when the limit lies beyond (a signal uncertainty of several hundred
    # per cent), and pyhf refuses a fit whose start lies outside the POI's bounds: they reach MU_MAX. A limit beyond
    # MU_MAX templates is no limit (infinite), not a failed job
    bounds = model.config.suggested_bounds()
    bounds[model.config.poi_index] = (0.0, MU_MAX)
    try:
        # the root search starts just above mu = 0, where q~mu's asymptotic CLs is 0/0 in pyhf (NaN stops the solver)
        observed, expected = pyhf.infer.intervals.upper_limits.toms748_scan(
            data, model, 1e-3, 10.0, level=1.0 - cl, test_stat="qtilde", par_bounds=bounds)[:2]
    except ValueError as error:
        if "outside of its bounds" not in str(error):
            raise
        return np.inf, (np.inf,) * len(BANDS)
    return float(observed) * template, tuple(float(e) * template for e in expected)


MU_MAX = 1000.0  # the largest limit asymptotic_limit looks for, in units of its signal template


def upper_limit(n_obs: float, b: float, b_err: float = 0.0, calculator: str = "auto", cl: float = 0.95,
                signal_err: float = 0.0) -> Limit:
    """The CLs upper limit on the selected signal count, observed and expected.

    ``calculator``: "asymptotic" (pyhf), "counting" (the closed form), or "auto": the closed form where fewer
    than ``TOYS_BELOW`` background events are expected, as the bump hunt's p0 takes toys there. ``signal_err``:
    the relative width of a log-normal nuisance on the signal.
    """
    if calculator not in CALCULATORS:
        raise ValueError(f"limits.calculator: expected one of {CALCULATORS}, got {calculator!r}")
    if not (np.isfinite(b) and b > 0 and np.isfinite(b_err) and b_err >= 0 and np.isfinite(n_obs) and n_obs >= 0):
        raise ValueError(f"a limit needs a count >= 0 and a positive background: n_obs {n_obs}, b {b} +- {b_err}")
    used = calculator if calculator != "auto" else ("counting" if b < TOYS_BELOW else "asymptotic")
    if not (np.isfinite(signal_err) and signal_err >= 0):
        raise ValueError(f"a signal uncertainty must be finite and >= 0, got {signal_err}")
    if used == "counting":
        return Limit(counting_limit(n_obs, b, b_err, cl, signal_err), counting_expected(b, b_err, cl, signal_err),
                     used)
    observed, expected = asymptotic_limit(n_obs, b, b_err, cl, signal_err)
    return Limit(observed, expected, used)


@dataclass(frozen=True)
class Efficiency:
    """The signal's selection efficiency (selected in the SR / injected, net of what the sideband fit absorbs) at each
    injected strength."""

    injections: np.ndarray  # injected signal events, increasing, > 0
    efficiency: np.ndarray  # mean over the pseudo-experiments (seeds)
    error: np.ndarray  # its statistical uncertainty: the seeds' spread over sqrt(seeds), binomial with one seed
    seeds: np.ndarray  # pseudo-experiments per strength
    # one pseudo-experiment's efficiency about the mean, beyond the binomial scatter of the signal it selects (which
    # the limit's Poisson term holds): NaN with one pseudo-experiment per strength
    scatter: np.ndarray

    @classmethod
    def measure(cls, injections, selected, fitted=None, fitted_null=None, observed=None,
                observed_null=None) -> "Efficiency":
        """From pairs (injected N, true signal selected in the SR), one per pseudo-experiment.

        With ``fitted`` (the sideband fit's SR background of each of them) and ``fitted_null`` (that of the
        background-only ones), the signal the fit absorbs is taken off: a signal with events in the sidebands
        raises the fitted background, and only the selected signal above that rise is an excess the limit can
        see. Counting all of it would set limits too strong (at 4.5 TeV such limits excluded an injected signal in
        8-10 of 15 pseudo-experiments; docs/benchmarks.md). With ``observed`` and ``observed_null`` (the selected
        SR counts), the rise is measured against the truth: each experiment's fitted background minus its true
        selected background (observed less the true signal selected), mean at the strength minus mean without
        signal. That sees what the fit absorbs even where the classifier that selects differs between the
        injected and the background-only experiments (a cut that keeps a fixed fraction selects other background
        events when it learned a signal: at 4.5 TeV the fit's excess over the true background rose by 53 events
        with 200 injected where the fitted backgrounds' means differed by 16). Without them the rise is the mean
        fitted background at the strength minus the background-only mean. Either is taken only where positive
        (a fall is noise; ignoring it keeps the limit conservative), and its statistical error is added to the
        efficiency's.

        ``scatter`` is the selected signal's standard deviation between the pseudo-experiments over N, less the
        binomial part N eps (1 - eps) of its variance (a limit's Poisson count already holds that). How much the
        signal the fit absorbs differs between them is the fit's own uncertainty, which the limit holds as the
        background's nuisance, so it is not counted again.
        """
        injections, selected = np.asarray(injections, float), np.asarray(selected, float)
        keep = injections > 0
        strengths = np.unique(injections[keep])
        eff, err, seeds, scatter = [], [], [], []
        for n in strengths:
            at = keep & (injections == n)
            ratios = selected[at] / n
            mean = float(ratios.mean())
            error = (float(ratios.std(ddof=1) / np.sqrt(len(ratios))) if len(ratios) > 1
                     else float(np.sqrt(max(mean * (1 - mean), 0.0) / n)))
            binomial = n * min(max(mean, 0.0), 1.0) * (1.0 - min(max(mean, 0.0), 1.0))
            scatter.append(float(np.sqrt(max(np.var(selected[at], ddof=1) - binomial, 0.0)) / n) if len(ratios) > 1
                           else float("nan"))
            if fitted is not None and fitted_null is not None and len(fitted_null):
                rise, null = np.asarray(fitted, float)[at], np.asarray(fitted_null, float)
                if observed is not None and observed_null is not None:  # the fit's excess over the true background
                    rise = rise - (np.asarray(observed, float)[at] - selected[at])
                    null = null - np.asarray(observed_null, float)
                rise, null = rise[np.isfinite(rise)], null[np.isfinite(null)]  # failed fits (NaN) left out
                absorbed = float(rise.mean() - null.mean()) if len(rise) and len(null) else 0.0
                if absorbed > 0:
                    mean = max(mean - absorbed / n, 0.0)
                    spread = [np.var(x, ddof=1) / len(x) for x in (rise, null) if len(x) > 1]
                    error = float(np.sqrt(error ** 2 + sum(spread) / n ** 2))
            eff.append(mean)
            seeds.append(int(at.sum()))
            err.append(error)
        return cls(strengths, np.array(eff), np.array(err), np.array(seeds), np.array(scatter))

    def relative_scatter(self, n) -> float:
        """``scatter`` over the efficiency at strength n (linear between strengths, held outside them like eps): the
        width of the signal's nuisance in the limit. NaN where a strength has one pseudo-experiment; inf where the
        cut keeps no signal."""
        if not np.isfinite(n) or not np.isfinite(self.scatter).all():
            return float("nan")
        eps = float(self.at(n))
        return float(np.interp(n, self.injections, self.scatter)) / eps if eps > 0 else float("inf")

    def at(self, n) -> np.ndarray:
        """eps(n): linear between the measured strengths, the nearest measured value outside them."""
        return np.interp(n, self.injections, self.efficiency)

    def excluded(self, s_limit: float) -> float:
        """The smallest injected strength N above which every strength is excluded, N eps(N) >= s_limit; inf when
        no strength up to 100 times the largest injected one is (the cut keeps too little of the signal)."""
        if not np.isfinite(s_limit):
            return float("inf")
        top = 100.0 * self.injections.max()
        grid = np.concatenate([np.linspace(0.0, self.injections.max(), 2001)[1:],
                               np.geomspace(self.injections.max(), top, 2001)[1:]])
        excess = grid * self.at(grid) - s_limit
        if excess[-1] < 0:
            return float("inf")
        below = np.nonzero(excess < 0)[0]
        if len(below) == 0:
            return float(s_limit / self.efficiency[0]) if self.efficiency[0] > 0 else float("inf")
        i = below[-1]
        return float(optimize.brentq(lambda n: n * self.at(n) - s_limit, grid[i], grid[i + 1], xtol=1e-9))

    def extrapolated(self, n: float) -> bool:
        """Whether ``n`` lies outside the measured strengths, where eps is held at its nearest measurement."""
        return bool(np.isfinite(n) and not (self.injections.min() <= n <= self.injections.max()))


@dataclass(frozen=True)
class InjectedLimit:
    """The limit on injected signal events (every event of the signal) and the selected-count limit it comes from."""

    observed: float
    expected: tuple[float, float, float, float, float]
    selected: Limit  # on the selected signal count: observed with the observed scatter, expected with the expected one
    scatter: float  # the relative efficiency scatter in the observed limit (NaN: unmeasured, one pseudo-experiment)
    scatter_expected: float  # the one in the expected limits (taken at the median)


def injected_limit(n_obs: float, b: float, b_err: float, efficiency: Efficiency, calculator: str = "auto",
                   cl: float = 0.95, count_scale: float = 1.0) -> InjectedLimit:
    """The 95 % CL limit on injected events: N with N eps(N) the CLs limit on the selected count, whose signal
    carries the efficiency's scatter at N as a nuisance (both taken at the excluded strength).

    The scatter depends on N and N on the scatter, so the limit is solved without it, then with the scatter at that
    N, and once more if the scatter at the new N differs by more than 10 %. ``count_scale`` turns the counts into
    effective (unweighted) events for the statistics; the limits are returned in the table's units.
    """
    def solve(signal_err):
        limit = upper_limit(count_scale * n_obs, count_scale * b, count_scale * b_err, calculator, cl, signal_err)
        return limit, limit.observed / count_scale, [e / count_scale for e in limit.expected]

    limit, s_obs, s_exp = solve(0.0)
    n_obs_limit, n_exp = efficiency.excluded(s_obs), [efficiency.excluded(v) for v in s_exp]
    calculator_used = limit.calculator

    def with_scatter(n):
        """The limit solved with the scatter at n, re-solved once if the excluded strength moves it by > 10 %."""
        r, out = efficiency.relative_scatter(n), None
        for _ in range(2):
            if not (np.isfinite(r) and r > 0):
                break
            out = (r, *solve(r))
            at = efficiency.relative_scatter(efficiency.excluded(out[2]))
            if not np.isfinite(at) or abs(at - r) <= 0.1 * r:
                break
            r = at
        return (out[0] if out else r), out

    scatter, solved = with_scatter(n_obs_limit)
    if solved is not None:
        s_obs = solved[2]
        n_obs_limit = efficiency.excluded(s_obs)
    scatter_expected, solved = with_scatter(n_exp[2])
    if solved is not None:
        s_exp = solved[3]
        n_exp = [efficiency.excluded(v) for v in s_exp]
    selected = Limit(s_obs, tuple(s_exp), calculator_used)
    return InjectedLimit(n_obs_limit, tuple(n_exp), selected, scatter, scatter_expected)
