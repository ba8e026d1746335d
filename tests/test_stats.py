import numpy as np
import pytest
from scipy import stats as sps

from slidescan import data
from slidescan.seeds import rng
from slidescan.stats import asimov_z, asimov_z_uncertain, bump_hunt, discovery_p0, fit_dijet, window_edges, z_from_p
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
    m = data.generate_background(n, data.SyntheticModel.from_config({}), rng(seed, "stats"))["mjj"].to_numpy()
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
    sig = data.generate_signal(600, data.SyntheticModel.from_config({}), rng(7, "sig"))["mjj"].to_numpy()
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


def test_toy_p0_is_the_exact_poisson_tail_for_a_known_background():
    from scipy import stats as sps

    for n, b in [(3, 0.3), (6, 2.0), (12, 5.0)]:
        exact = sps.poisson.sf(n - 1, b)
        assert discovery_p0(n, b, 0.0, "toys", ntoys=400_000, seed=1) == pytest.approx(exact, rel=0.05)
    # where the asymptotic formula is off by a factor of 2 at small counts
    assert discovery_p0(3, 0.3, 0.0) < 0.6 * sps.poisson.sf(2, 0.3)


def test_toy_p0_agrees_with_asymptotic_at_large_counts():
    for n, b, err in [(1080, 1000, 20), (120, 100, 5)]:
        toys = discovery_p0(n, b, err, "toys", ntoys=400_000, seed=2)
        assert toys == pytest.approx(discovery_p0(n, b, err), rel=0.08)
    assert discovery_p0(90, 100, 5, "toys") == 0.5
    with pytest.raises(ValueError, match="bumphunt.p0_calculator: expected one of"):
        discovery_p0(130, 100, 5, "bayes")


def test_auto_calculator_uses_toys_only_for_few_events_and_truth_gives_expected_z():
    g = np.random.default_rng(8)
    w = WINDOW
    mjj = _background_mjj(200_000, 8)
    scores = g.random(len(mjj))
    labels = np.zeros(len(mjj), dtype=int)
    results = bump_hunt(mjj, scores, w, [1.0, 0.0001], 0.05, labels=labels, calculator="auto", ntoys=2000)
    by_eff = {r.efficiency: r for r in results}
    assert by_eff[1.0].p0_calculator == "asymptotic" and by_eff[1.0].n_bkg > 10
    assert by_eff[0.0001].p0_calculator == "toys" and by_eff[0.0001].n_bkg < 10
    assert by_eff[1.0].n_signal_selected == 0 and by_eff[1.0].z_expected == 0.0
    # a planted signal: its expected Z is the Asimov Z of the selected true signal over the prediction
    sig = g.normal(3.5, 0.05, 400)
    mjj2 = np.concatenate([mjj, sig])
    labels2 = np.concatenate([labels, np.ones(400, int)])
    r = bump_hunt(mjj2, np.concatenate([scores, np.ones(400)]), w, [1.0], 0.05, labels=labels2)[0]
    n_sig = int(np.sum((sig >= 3.3) & (sig < 3.7)))
    assert r.n_signal_selected == n_sig
    assert r.z_expected == pytest.approx(asimov_z_uncertain(n_sig, r.n_bkg, r.n_bkg_err))
    assert 0 < r.z_expected < asimov_z(n_sig, r.n_bkg)


def test_asimov_with_uncertainty_reduces_to_known_background():
    assert asimov_z_uncertain(50, 1000, 0.0) == pytest.approx(asimov_z(50, 1000))
    assert asimov_z_uncertain(50, 1000, 1e-3) == pytest.approx(asimov_z(50, 1000), rel=1e-4)
    assert asimov_z_uncertain(50, 1000, 30) < asimov_z(50, 1000)
