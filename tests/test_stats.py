import numpy as np
import pytest
from scipy import stats as sps

from slidescan import data
from slidescan.seeds import rng
from slidescan.stats import asimov_z, bump_hunt, discovery_p0, fit_dijet, window_edges, z_from_p
from slidescan.windows import Window

WINDOW = Window(0, 2.7, 3.3, 3.7, 4.3)


@pytest.mark.parametrize("s,b", [(20, 100), (5, 10), (50, 1000), (300, 20000), (12, 3)])
def test_p0_matches_asimov_formula_without_uncertainty(s, b):
    z = z_from_p(discovery_p0(s + b, b, 0.0))
    assert z == pytest.approx(asimov_z(s, b), rel=0.01)


def test_uncertainty_lowers_significance_and_deficit_gives_half():
    assert z_from_p(discovery_p0(130, 100, 10)) < z_from_p(discovery_p0(130, 100, 0))
    assert discovery_p0(80, 100, 5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="positive and finite"):
        discovery_p0(10, 0.0, 1.0)


def _background_mjj(n, seed):
    m = data.generate_background(n, data.SyntheticModel(), rng(seed, "stats"))["mjj"].to_numpy()
    return m[(m >= WINDOW.sb_lo) & (m < WINDOW.sb_hi)]


def test_fit_recovers_smooth_spectrum():
    mjj = _background_mjj(100_000, 1)
    low, sr, high = window_edges(WINDOW, 0.05)
    fit = fit_dijet([low, high], [np.histogram(mjj, low)[0], np.histogram(mjj, high)[0]])
    assert fit.ok
    from slidescan.stats import predict
    b, b_err = predict(sr, fit)
    n_sr = np.histogram(mjj, sr)[0].sum()
    assert abs(n_sr - b) < 3 * np.sqrt(n_sr + b_err**2)
    assert 0 < b_err < 0.05 * b


def test_background_only_toys_give_uniform_p0():
    p0 = []
    for toy in range(120):
        mjj = _background_mjj(12_000, 100 + toy)
        res = bump_hunt(mjj, np.zeros_like(mjj), WINDOW, [1.0], 0.05)[0]
        assert res.fit_ok
        p0.append(res.p0)
    p0 = np.array(p0)
    # p0 is clipped to 0.5 for deficits: test uniformity on the excess half
    excess = p0[p0 < 0.5] * 2
    assert sps.kstest(excess, "uniform").pvalue > 0.01
    assert 0.3 < np.mean(p0 < 0.5) < 0.7
    assert np.mean(p0 < 0.05) < 0.15


def test_planted_bump_is_found_and_cut_helps():
    mjj = _background_mjj(150_000, 7)
    sig = data.generate_signal(600, data.SyntheticModel(), rng(7, "sig"))["mjj"].to_numpy()
    all_mjj = np.concatenate([mjj, sig])
    gen = np.random.default_rng(0)
    # a perfect-ish tagger: signal scores high, background uniform
    scores = np.concatenate([gen.random(len(mjj)), 1 + gen.random(len(sig))])
    results = {r.efficiency: r for r in bump_hunt(all_mjj, scores, WINDOW, [1.0, 0.01], 0.05)}
    assert results[0.01].fit_ok and results[0.01].z > 5
    assert results[0.01].z > results[1.0].z
    # the same tagger on background alone finds nothing
    quiet = bump_hunt(mjj, gen.random(len(mjj)), WINDOW, [1.0, 0.01], 0.05)
    assert all(r.z < 3 for r in quiet)


def test_failed_fit_is_flagged_not_used():
    mjj = np.array([3.4, 3.5, 3.6])  # nothing in the sidebands
    with pytest.raises(ValueError, match="no sideband events"):
        bump_hunt(mjj, np.ones(3), WINDOW, [0.1], 0.05)
    res = bump_hunt(mjj, np.ones(3), WINDOW, [1.0], 0.05)[0]
    assert not res.fit_ok and np.isnan(res.p0) and "no selected events" in res.fit_message


def test_ftest_keeps_three_parameters_for_a_dijet_spectrum_and_takes_four_when_needed():
    from slidescan.stats import fit_dijet_ftest

    low, _, high = window_edges(WINDOW, 0.05)
    mjj = _background_mjj(200_000, 3)
    counts = [np.histogram(mjj, low)[0], np.histogram(mjj, high)[0]]
    assert fit_dijet_ftest([low, high], counts).n_params == 3
    # a spectrum with a strong ln(x)^2 term needs the fourth parameter
    from slidescan.stats import bin_integrals
    gen = np.random.default_rng(0)
    curved = [gen.poisson(bin_integrals(e, np.array([-2.0, 5.0, 8.0, 3.0])) * 5e5) for e in (low, high)]
    chosen = fit_dijet_ftest([low, high], curved)
    assert chosen.ok and chosen.n_params == 4
    results = bump_hunt(mjj, np.zeros_like(mjj), WINDOW, [1.0], 0.05, n_params="ftest")
    assert results[0].fit_parameters == 3 and results[0].fit_bins == 24 and results[0].fit_deviance > 0
